import type { Readable, Writable } from 'node:stream'

/** The process's streams, injected so tests can capture exactly what a person or a script would see. */
export interface IO {
  in: Readable
  out: Writable
  err: Writable
  isInTTY: boolean
  isOutTTY: boolean
  isErrTTY: boolean
  /** Terminal width of stderr, when it is a terminal. */
  columns?: number
}

/** Environment variables, read-only. */
export type Env = Readonly<Record<string, string | undefined>>

/** The real process streams. */
export function processIO(): IO {
  // `jit status | head -1`: a reader that goes away is not an error worth a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
      throw err
    })
  }
  return {
    in: process.stdin,
    out: process.stdout,
    err: process.stderr,
    isInTTY: process.stdin.isTTY === true,
    isOutTTY: process.stdout.isTTY === true,
    isErrTTY: process.stderr.isTTY === true,
    columns: process.stderr.columns,
  }
}
