import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { computeDeadline, isExpired, isUsable } from '../../../src/core/token-policy.js'

const T0 = 1_800_000_000_000 // a fixed "now" in epoch ms

describe('computeDeadline', () => {
  it.each([
    { name: 'TTL shorter than everything', input: { ttlMs: 60_000, expiresIn: 3600, jwtExp: T0 / 1000 + 3600 }, deadline: T0 + 60_000, cappedBy: 'ttl' },
    { name: 'expires_in shorter than TTL', input: { ttlMs: 7_200_000, expiresIn: 300 }, deadline: T0 + 300_000, cappedBy: 'expires_in' },
    { name: 'JWT exp shorter than expires_in', input: { ttlMs: 7_200_000, expiresIn: 3600, jwtExp: T0 / 1000 + 120 }, deadline: T0 + 120_000, cappedBy: 'exp' },
    { name: 'max-ttl below TTL', input: { ttlMs: 7_200_000, maxTtlMs: 600_000 }, deadline: T0 + 600_000, cappedBy: 'max-ttl' },
    { name: 'no expires_in: JWT exp decides', input: { ttlMs: 7_200_000, jwtExp: T0 / 1000 + 900 }, deadline: T0 + 900_000, cappedBy: 'exp' },
    { name: 'no expires_in, no JWT: the TTL decides', input: { ttlMs: 900_000 }, deadline: T0 + 900_000, cappedBy: 'ttl' },
    { name: 'a tie names the TTL the user asked for', input: { ttlMs: 120_000, expiresIn: 120, jwtExp: T0 / 1000 + 120 }, deadline: T0 + 120_000, cappedBy: 'ttl' },
    { name: 'a JWT exp a little earlier (rounding, latency) still names the TTL', input: { ttlMs: 120_500, jwtExp: T0 / 1000 + 120 }, deadline: T0 + 120_000, cappedBy: 'ttl' },
    { name: 'a JWT exp more than 5 seconds earlier is the cap', input: { ttlMs: 126_000, jwtExp: T0 / 1000 + 120 }, deadline: T0 + 120_000, cappedBy: 'exp' },
    { name: 'a JWT exp already in the past', input: { ttlMs: 120_000, jwtExp: T0 / 1000 - 10 }, deadline: T0 - 10_000, cappedBy: 'exp' },
  ])('$name', ({ input, deadline, cappedBy }) => {
    expect(computeDeadline({ obtainedAt: T0, ...input })).toEqual({ deadline, cappedBy })
  })

  it('returns undefined when nothing bounds the credential', () => {
    expect(computeDeadline({ obtainedAt: T0 })).toBeUndefined()
  })

  it('is never later than any of its inputs (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: -1000, max: 100_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 10_000_000 }), { nil: undefined }),
        (ttlMs, expiresIn, expOffset, maxTtlMs) => {
          const jwtExp = expOffset === undefined ? undefined : Math.floor(T0 / 1000) + expOffset
          const d = computeDeadline({ obtainedAt: T0, ttlMs, expiresIn, jwtExp, maxTtlMs })!
          expect(d.deadline).toBeLessThanOrEqual(T0 + ttlMs)
          if (expiresIn !== undefined) expect(d.deadline).toBeLessThanOrEqual(T0 + expiresIn * 1000)
          if (jwtExp !== undefined) expect(d.deadline).toBeLessThanOrEqual(jwtExp * 1000)
          if (maxTtlMs !== undefined) expect(d.deadline).toBeLessThanOrEqual(T0 + maxTtlMs)
        },
      ),
    )
  })
})

describe('isUsable', () => {
  it.each([
    { now: T0, leeway: 30_000, minTtl: 0, deadline: T0 + 60_000, usable: true },
    { now: T0, leeway: 30_000, minTtl: 0, deadline: T0 + 30_000, usable: false },
    { now: T0, leeway: 30_000, minTtl: 29_999, deadline: T0 + 60_000, usable: true },
    { now: T0, leeway: 30_000, minTtl: 30_000, deadline: T0 + 60_000, usable: false },
    { now: T0, leeway: 0, minTtl: 0, deadline: T0, usable: false },
    { now: T0, leeway: 0, minTtl: 0, deadline: T0 + 1, usable: true },
    { now: T0, leeway: 0, minTtl: 0, deadline: Number.NaN, usable: false },
  ])('now+$leeway+$minTtl vs deadline → $usable', ({ now, leeway, minTtl, deadline, usable }) => {
    expect(isUsable(deadline, now, leeway, minTtl)).toBe(usable)
  })

  it('is never true at or after the deadline, whatever the margins (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: -10_000_000, max: 10_000_000 }),
        fc.integer({ min: -10_000_000, max: 10_000_000 }),
        (deadline, after, leeway, minTtl) => {
          expect(isUsable(deadline, deadline + after, leeway, minTtl)).toBe(false)
          expect(isExpired(deadline, deadline + after)).toBe(true)
        },
      ),
    )
  })

  it('is true before the deadline when the margins fit (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 1, max: 10_000_000 }), (now, room) => {
        expect(isUsable(now + room, now, 0, 0)).toBe(true)
        expect(isUsable(now + room, now, room, 0)).toBe(false)
      }),
    )
  })
})
