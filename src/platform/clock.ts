/** Time as jit sees it. Core code never reads `Date.now()`; tests pass a fixed clock. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() }

/** Waits `ms`, or rejects with the signal's reason when it is aborted. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>

/** The real sleep, cancellable through an `AbortSignal`. */
export const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
