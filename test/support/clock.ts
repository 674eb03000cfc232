import type { Clock } from '../../src/platform/clock.js'

/** A clock that only moves when told to. */
export interface FixedClock extends Clock {
  advance(ms: number): void
  set(ms: number): void
}

/** A fixed clock starting at `start` (default: real now, since providers check ID-token times against real time). */
export function fixedClock(start: number = Date.now()): FixedClock {
  let t = start
  return {
    now: () => t,
    advance: (ms) => {
      t += ms
    },
    set: (ms) => {
      t = ms
    },
  }
}
