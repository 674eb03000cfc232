import { ErrorCode, JitError, isJitError } from '../errors.js'
import { formatDuration } from './duration.js'
import { missingScopes } from './scopes.js'
import { isUsable } from './token-policy.js'
import type { Credential } from './credential-cache.js'
import { getToken, type GetTokenDeps, type GetTokenInput, type GetTokenResult } from './get-token.js'
import { requestKey } from './request.js'

/** Serializes the fetching of one credential across processes (DESIGN.md §4). */
export interface Locks {
  /** Waits for the lock of `key`; resolves with its release. */
  acquire(key: string): Promise<() => void>
}

/** Dependencies of {@link obtainToken}. */
export type ObtainDeps = GetTokenDeps & { locks: Locks }

/**
 * A usable credential from the cache, or a fresh one from `fetch` when there is none and one can be had here. Many
 * processes at once (CI jobs) make one request: whoever holds the per-key lock fetches; the others wait for it and
 * then find the fresh credential in the cache.
 *
 * @throws what {@link getToken} throws when there is no `fetch`, else what `fetch` throws.
 */
export async function obtainToken(
  deps: ObtainDeps,
  input: GetTokenInput,
  fetch: (() => Promise<Credential>) | undefined,
  refresh?: (credential: Credential) => Promise<Credential>,
): Promise<GetTokenResult & { fetched: boolean }> {
  const { refresh: _ignored, ...plain } = deps
  let first: unknown
  try {
    return { ...(await getToken(plain, input)), fetched: false }
  } catch (err) {
    const miss = isJitError(err, ErrorCode.NOT_LOGGED_IN) || isJitError(err, ErrorCode.TOKEN_EXPIRED)
    if (!miss || (!fetch && !refresh)) throw err
    first = err
  }
  const release = await deps.locks.acquire(requestKey(input.request).replace('/', '.'))
  let refreshError: unknown
  const tracked = refresh
    ? async (c: Credential): Promise<Credential> => {
        try {
          return await refresh(c)
        } catch (err) {
          refreshError = err
          throw err
        }
      }
    : undefined
  try {
    try {
      // Under the lock: another process may have logged in or refreshed meanwhile; a refresh happens here, once.
      return { ...(await getToken({ ...plain, ...(tracked ? { refresh: tracked } : {}) }, input)), fetched: false }
    } catch (err) {
      const miss = isJitError(err, ErrorCode.NOT_LOGGED_IN) || isJitError(err, ErrorCode.TOKEN_EXPIRED)
      // A refresh that failed says why itself.
      if (!miss || (err === refreshError && !fetch)) throw err
      // Nothing to fetch with: the first answer (say, "expired and deleted") is the one that explains.
      if (!fetch) throw isJitError(err, ErrorCode.TOKEN_EXPIRED) ? err : first
    }
    const credential = await fetch()
    const lacking = missingScopes(input.request.scopes, credential.meta.scopes)
    if (lacking.length > 0) {
      // Kept for what it was granted, but it cannot serve this request: the provider said no to part of it.
      throw new JitError(ErrorCode.ACCESS_DENIED, `the provider did not grant ${lacking.join(' ')} to profile "${input.request.profile}"`, {
        hint: `granted: ${credential.meta.scopes.filter((s) => s !== 'openid').join(' ') || '(none)'}`,
      })
    }
    const now = deps.clock.now()
    if (!isUsable(credential.meta.deadline, now, input.request.leewayMs, input.minTtlMs)) {
      throw new JitError(
        ErrorCode.NOT_LOGGED_IN,
        `the new credential of profile "${input.request.profile}" lives ${formatDuration(credential.meta.deadline - now)}, less than asked for`,
        { hint: 'ask for a shorter --min-ttl, or a longer --ttl if the provider allows it' },
      )
    }
    return { credential, expired: [], fetched: true }
  } finally {
    release()
  }
}
