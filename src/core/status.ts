import type { Clock } from '../platform/clock.js'
import { removeExpired, type CacheDeps } from './credential-cache.js'
import type { CredentialMeta } from './ports.js'

/** One cached credential as `jit status` shows it. */
export interface StatusEntry {
  profile: string
  issuer: string
  clientId: string
  scopes: string[]
  resources: string[]
  audience?: string
  subject?: string
  obtainedAt: number
  deadline: number
  /** ms left at the time of the call. */
  remainingMs: number
  cappedBy: CredentialMeta['cappedBy']
  /** With a refresh token: the end of the login, which refreshes never pass. */
  refreshableUntil?: number
  store: CredentialMeta['store']
  flow: string
}

/** Result of {@link status}. */
export interface StatusResult {
  entries: StatusEntry[]
  /** Credentials that were past their deadline and were deleted by this call. */
  removed: CredentialMeta[]
}

/**
 * Lists cached credentials (optionally of one profile) from the state file alone: no keychain unlock. Expired ones
 * are deleted on the way and reported as removed.
 */
export async function status(deps: CacheDeps & { clock: Clock }, input: { profile?: string }): Promise<StatusResult> {
  const now = deps.clock.now()
  const match = (m: CredentialMeta): boolean => input.profile === undefined || m.profile === input.profile
  const removed = await removeExpired(deps, now, match)
  const entries = deps.state
    .list()
    .filter(match)
    .sort((a, b) => a.profile.localeCompare(b.profile) || a.deadline - b.deadline)
    .map((m) => ({
      profile: m.profile,
      issuer: m.issuer,
      clientId: m.clientId,
      scopes: m.scopes,
      resources: m.resources,
      ...(m.audience ? { audience: m.audience } : {}),
      ...(m.subject ? { subject: m.subject } : {}),
      obtainedAt: m.obtainedAt,
      deadline: m.deadline,
      remainingMs: m.deadline - now,
      cappedBy: m.cappedBy,
      ...(m.refreshable && m.loginDeadline !== undefined ? { refreshableUntil: m.loginDeadline } : {}),
      store: m.store,
      flow: m.flow,
    }))
  return { entries, removed }
}
