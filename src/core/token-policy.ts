/**
 * The expiry rule of DESIGN.md §3, as pure functions. Nothing here reads a clock: callers pass `now`.
 */

/** What set a credential's deadline, shown by `jit status`. */
export type DeadlineCap = 'ttl' | 'max-ttl' | 'exp' | 'expires_in'

/** Input of {@link computeDeadline}; every time is epoch milliseconds of jit's own clock. */
export interface DeadlineInput {
  /** When the token response arrived, by jit's clock. */
  obtainedAt: number
  /** The access token's JWT `exp` claim (epoch seconds), when it is a JWT. */
  jwtExp?: number
  /** The response's `expires_in` (seconds). */
  expiresIn?: number
  /** The TTL that was asked for (ms). */
  ttlMs?: number
  /** The profile's `max-ttl` (ms). */
  maxTtlMs?: number
}

/** The deadline and the limit that set it. */
export interface Deadline {
  deadline: number
  cappedBy: DeadlineCap
}

/**
 * `deadline = min(JWT exp, obtainedAt + expires_in, obtainedAt + TTL, obtainedAt + max-ttl)`. The deadline is always
 * the earliest; `cappedBy` names the limit the user chose (`ttl`, then `max-ttl`) when it is within a few seconds of
 * the earliest, so a provider that honoured the TTL is not reported as the cap. Returns `undefined` when nothing bounds the credential: such a credential must not be cached.
 */
/**
 * Limits this close to the earliest count as a tie for `cappedBy`: a provider that honoured the TTL stamps `exp` from its
 * own issue time, a network round trip (and a JWKS fetch) before jit reads its clock.
 */
const TIE_MS = 5000

export function computeDeadline(input: DeadlineInput): Deadline | undefined {
  const candidates: Array<[DeadlineCap, number | undefined]> = [
    ['ttl', input.ttlMs === undefined ? undefined : input.obtainedAt + input.ttlMs],
    ['max-ttl', input.maxTtlMs === undefined ? undefined : input.obtainedAt + input.maxTtlMs],
    ['exp', input.jwtExp === undefined ? undefined : input.jwtExp * 1000],
    ['expires_in', input.expiresIn === undefined ? undefined : input.obtainedAt + input.expiresIn * 1000],
  ]
  const known = candidates.filter((c): c is [DeadlineCap, number] => c[1] !== undefined && Number.isFinite(c[1]))
  if (known.length === 0) return undefined
  const deadline = Math.min(...known.map(([, at]) => at))
  const cappedBy = known.find(([, at]) => at - deadline < TIE_MS)![0]
  return { deadline, cappedBy }
}

/** Default safety margin before a deadline (DESIGN.md §3). */
export const DEFAULT_LEEWAY_MS = 30_000

/**
 * A credential is usable when `now + leeway + minTtl < deadline`. Never true at or after the deadline, whatever the
 * other arguments are (negative margins are treated as zero).
 */
export function isUsable(deadline: number, now: number, leewayMs = DEFAULT_LEEWAY_MS, minTtlMs = 0): boolean {
  if (!Number.isFinite(deadline) || !Number.isFinite(now)) return false
  return now + Math.max(0, leewayMs) + Math.max(0, minTtlMs) < deadline
}

/** True once the deadline has passed: the credential must be deleted, not just skipped. */
export function isExpired(deadline: number, now: number): boolean {
  return !Number.isFinite(deadline) || now >= deadline
}
