import { Chalk, type ChalkInstance } from 'chalk'
import type { Env, IO } from '../platform/io.js'

/** Colours for stderr: only on a terminal, never with `NO_COLOR` or `TERM=dumb` (https://no-color.org). */
export function stderrStyle(io: IO, env: Env): ChalkInstance {
  const enabled = io.isErrTTY && env.NO_COLOR === undefined && env.TERM !== 'dumb'
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.NO_COLOR === undefined
  return new Chalk({ level: enabled || forced ? 1 : 0 })
}

/** Writes one JSON event line on stderr (`jit login --json`). */
export function writeEvent(io: IO, event: Record<string, unknown>): void {
  io.err.write(`${JSON.stringify(event)}\n`)
}

/** A status line redrawn in place on a terminal (spinner + text); silent elsewhere. */
export class StatusLine {
  private timer: NodeJS.Timeout | undefined
  private frame = 0
  private static readonly FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

  constructor(
    private readonly io: IO,
    private readonly style: ChalkInstance,
  ) {}

  /** Starts redrawing `text()` every 100 ms. */
  start(text: () => string): void {
    if (!this.io.isErrTTY) return
    this.stop()
    const draw = (): void => {
      const spin = StatusLine.FRAMES[this.frame++ % StatusLine.FRAMES.length]
      this.io.err.write(`\r\u001b[2K${this.style.cyan(spin)} ${text()}`)
    }
    draw()
    this.timer = setInterval(draw, 100)
  }

  /** Stops and clears the line. */
  stop(): void {
    if (this.timer === undefined) return
    clearInterval(this.timer)
    this.timer = undefined
    this.io.err.write('\r\u001b[2K')
  }
}
