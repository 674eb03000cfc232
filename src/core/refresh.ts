import { ErrorCode, JitError, isJitError } from '../errors.js'
import { tokenFingerprint } from '../store/cache-key.js'
import type { Clock } from '../platform/clock.js'
import { deleteCredential, saveCredential, type CacheDeps, type Credential } from './credential-cache.js'
import { readJwtExp } from './jwt.js'
import type { OidcPort } from './ports.js'
import { computeDeadline } from './token-policy.js'

/** Input of {@link refreshCredential}. */
export interface RefreshInput {
  credential: Credential
  ttlParam?: string
  allowInsecureLoopback: boolean
}

/**
 * Refreshes the access token (RFC 6749 §6) inside the login's TTL: the new deadline is capped by the login's deadline,
 * so a refresh never moves the end of access. A refresh the provider refuses (revoked, expired) deletes the credential
 * and asks for a login (`JIT_NOT_LOGGED_IN`, exit 4).
 */
export async function refreshCredential(deps: CacheDeps & { clock: Clock; oidc: () => Promise<OidcPort> }, input: RefreshInput): Promise<Credential> {
  const { credential } = input
  const meta = credential.meta
  const loginDeadline = meta.loginDeadline ?? meta.deadline
  if (!credential.refreshToken) throw new JitError(ErrorCode.NOT_LOGGED_IN, `the credential of profile "${meta.profile}" cannot be refreshed`)
  const oidc = await deps.oidc()
  const session = await oidc.discover({ issuer: meta.issuer, clientId: meta.clientId, allowInsecureLoopback: input.allowInsecureLoopback })
  const params = new URLSearchParams()
  // One access token per resource (RFC 8707 §2.2): the one this credential is for.
  if (meta.resources[0] !== undefined) params.set('resource', meta.resources[0])
  const before = deps.clock.now()
  if (input.ttlParam) params.set(input.ttlParam, String(Math.max(1, Math.floor((loginDeadline - before) / 1000))))
  let tokens
  try {
    tokens = await session.refresh(credential.refreshToken, params)
  } catch (err) {
    if (isJitError(err, ErrorCode.NETWORK)) throw err
    await deleteCredential(deps, meta)
    throw new JitError(ErrorCode.NOT_LOGGED_IN, `the provider refused to refresh the credential of profile "${meta.profile}"`, {
      cause: err,
      hint: `run: jit login --profile ${meta.profile}`,
    })
  }
  const obtainedAt = deps.clock.now()
  const jwtExp = readJwtExp(tokens.accessToken)
  const bound = computeDeadline({
    obtainedAt,
    ttlMs: loginDeadline - obtainedAt,
    ...(jwtExp !== undefined ? { jwtExp } : {}),
    ...(tokens.expiresIn !== undefined ? { expiresIn: tokens.expiresIn } : {}),
  })!
  const refreshed: Credential = {
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    ...(tokens.idToken ?? credential.idToken ? { idToken: tokens.idToken ?? credential.idToken } : {}),
    // Providers that rotate refresh tokens send a new one; the old one is then spent.
    refreshToken: tokens.refreshToken ?? credential.refreshToken,
    meta: {
      ...meta,
      obtainedAt,
      deadline: Math.min(bound.deadline, loginDeadline),
      cappedBy: bound.cappedBy,
      loginDeadline,
      fingerprint: tokenFingerprint(tokens.accessToken),
    },
  }
  await saveCredential(deps, refreshed)
  return refreshed
}
