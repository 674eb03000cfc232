import { ErrorCode, JitError } from '../errors.js'
import type { Clock } from '../platform/clock.js'
import { formatDuration } from './duration.js'
import { deleteCredential, readCredential, removeExpired, type CacheDeps, type Credential } from './credential-cache.js'
import type { CredentialMeta } from './ports.js'
import { requestKey, type CredentialRequest } from './request.js'
import { missingScopes } from './scopes.js'
import { isUsable } from './token-policy.js'

/** Input of {@link getToken}. */
export interface GetTokenInput {
  request: CredentialRequest
  /** The credential must live at least this long after it is handed out (ms). */
  minTtlMs: number
  /** The command that gets a fresh credential, for the hint (`jit login --profile prod --scope db:read`). */
  loginCommand: string
}

/** Dependencies of {@link getToken}. */
export type GetTokenDeps = CacheDeps & {
  clock: Clock
  /**
   * Refreshes a credential whose access token is past its deadline (or too close to it) while its login is not; the
   * caller holds the per-key lock. Absent: no refresh here.
   */
  refresh?: (credential: Credential) => Promise<Credential>
}

/** Result of {@link getToken}: the credential, and what cleanup removed on the way. */
export interface GetTokenResult {
  credential: Credential
  expired: CredentialMeta[]
}

/**
 * Returns the cached credential for the request when it is usable (`now + leeway + minTtl < deadline`, DESIGN.md §3).
 *
 * The token is not validated again here: it was validated when it was obtained, and only its deadline can change
 * its fitness. A credential past its deadline is deleted from the store and the state file when it is seen, and is
 * never returned.
 *
 * @throws JitError `JIT_TOKEN_EXPIRED` (past its deadline, now deleted), `JIT_NOT_LOGGED_IN` (nothing cached, or too
 *   little time left for `minTtl`), both exit 4; store errors as `JIT_KEYCHAIN_UNAVAILABLE`.
 */
export async function getToken(deps: GetTokenDeps, input: GetTokenInput): Promise<GetTokenResult> {
  const now = deps.clock.now()
  const key = requestKey(input.request)
  const expired = await removeExpired(deps, now)
  const hint = `run: ${input.loginCommand}`
  const profile = input.request.profile

  const mine = expired.find((m) => m.key === key)
  if (mine) throw expiredError(profile, mine, hint)

  const read = await readCredential(deps, key, now)
  if (read.kind === 'expired') {
    await deleteCredential(deps, read.meta)
    throw expiredError(profile, read.meta, hint)
  }
  if (read.kind === 'miss') {
    throw new JitError(ErrorCode.NOT_LOGGED_IN, `profile "${profile}" has no cached credential for ${describe(input.request)}`, { hint })
  }
  let { credential } = read
  const needsRefresh = read.kind === 'stale' || !isUsable(credential.meta.deadline, now, input.request.leewayMs, input.minTtlMs)
  const loginEnd = credential.meta.loginDeadline ?? credential.meta.deadline
  if (needsRefresh && credential.meta.refreshable && credential.refreshToken) {
    if (!isUsable(loginEnd, now, input.request.leewayMs, input.minTtlMs)) {
      // The login's TTL is the hard end: no refresh may carry the credential past it.
      if (read.kind === 'stale') {
        await deleteCredential(deps, credential.meta)
        throw expiredError(profile, { ...credential.meta, deadline: credential.meta.deadline }, hint)
      }
    } else if (deps.refresh) {
      credential = await deps.refresh(credential)
    } else {
      throw new JitError(ErrorCode.NOT_LOGGED_IN, `the access token of profile "${profile}" needs a refresh`, { hint })
    }
  } else if (read.kind === 'stale') {
    await deleteCredential(deps, credential.meta)
    throw expiredError(profile, credential.meta, hint)
  }
  const lacking = missingScopes(input.request.scopes, credential.meta.scopes)
  if (lacking.length > 0) {
    // Cached under this request, but the provider granted less: it cannot serve what it was not given.
    throw new JitError(ErrorCode.NOT_LOGGED_IN, `the credential of profile "${profile}" was not granted: ${lacking.join(' ')}`, {
      hint: `${hint} (the provider may not allow ${lacking.length === 1 ? 'this scope' : 'these scopes'} for you)`,
    })
  }
  if (!isUsable(credential.meta.deadline, now, input.request.leewayMs, input.minTtlMs)) {
    const left = credential.meta.deadline - now
    throw new JitError(
      ErrorCode.NOT_LOGGED_IN,
      input.minTtlMs > 0
        ? `the credential of profile "${profile}" has ${formatDuration(left)} left, less than --min-ttl ${formatDuration(input.minTtlMs)}`
        : `the credential of profile "${profile}" expires in ${formatDuration(left)}, inside the safety margin`,
      { hint },
    )
  }
  return { credential, expired }
}

function expiredError(profile: string, meta: CredentialMeta, hint: string): JitError {
  return new JitError(ErrorCode.TOKEN_EXPIRED, `the credential of profile "${profile}" expired at ${new Date(meta.deadline).toISOString()} and was deleted`, {
    hint,
  })
}

function describe(request: CredentialRequest): string {
  const scopes = request.scopes.filter((s) => s !== 'openid')
  const parts = [scopes.length ? `scope "${scopes.join(' ')}"` : 'its default scope']
  if (request.resources.length) parts.push(`resource "${request.resources.join(' ')}"`)
  if (request.audience) parts.push(`audience "${request.audience}"`)
  return parts.join(', ')
}
