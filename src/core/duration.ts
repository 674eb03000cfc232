import { ErrorCode, JitError } from '../errors.js'

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** The longest duration jit accepts anywhere (a TTL of a year is a mistake, not a request). */
export const MAX_DURATION_MS = 366 * UNIT_MS.d!

/**
 * Parses a duration such as `90s`, `15m`, `2h`, `1d` or `1h30m` into milliseconds.
 *
 * @throws JitError `JIT_INVALID_TTL` for zero, negative, fractional-unit or unknown input; `what` names the flag in
 *   the message (`invalid --ttl "abc": ...`).
 */
export function parseDuration(text: string, what = 'duration'): number {
  const input = text.trim().toLowerCase()
  const fail = (why: string): never => {
    throw new JitError(ErrorCode.INVALID_TTL, `invalid ${what} "${text}": ${why}`, {
      hint: 'use a number with a unit: 90s, 15m, 2h, 1d or 1h30m',
    })
  }
  if (input === '') fail('empty')
  if (input.startsWith('-')) fail('must be positive')
  const re = /(\d+)([smhd])/gy
  let total = 0
  let consumed = 0
  let match: RegExpExecArray | null
  while ((match = re.exec(input)) !== null) {
    total += Number(match[1]) * UNIT_MS[match[2]!]!
    consumed = re.lastIndex
  }
  if (consumed !== input.length) fail('use a number with a unit (s, m, h, d)')
  if (total <= 0) fail('must be more than zero')
  if (total > MAX_DURATION_MS) fail('longer than a year')
  return total
}

/** Formats milliseconds for people: `1h 59m`, `4m 10s`, `12s`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s'
  const s = Math.floor(ms / 1000)
  const d = Math.floor(s / 86_400)
  const h = Math.floor((s % 86_400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`
  if (m > 0) return sec > 0 ? `${m}m ${sec}s` : `${m}m`
  return `${sec}s`
}
