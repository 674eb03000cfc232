import { describe, expect, it } from 'vitest'
import { formatDuration, parseDuration } from '../../../src/core/duration.js'
import { ErrorCode, JitError } from '../../../src/errors.js'

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    [' 2H ', 7_200_000],
  ])('%s → %i ms', (text, ms) => {
    expect(parseDuration(text, '--ttl')).toBe(ms)
  })

  it.each(['0s', '0', '-5m', '', 'abc', '10', '1.5h', '5 m', 'h', '1w', '400d', '2h-1m'])('rejects %j', (text) => {
    let caught: unknown
    try {
      parseDuration(text, '--ttl')
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(JitError)
    expect((caught as JitError).code).toBe(ErrorCode.INVALID_TTL)
    expect((caught as JitError).message).toContain('--ttl')
  })
})

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [12_000, '12s'],
    [250_000, '4m 10s'],
    [3_600_000, '1h'],
    [7_140_000, '1h 59m'],
    [90_000_000, '1d 1h'],
  ])('%i → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text)
  })
})
