import { spawn } from 'node:child_process'
import { constants } from 'node:os'

/** What to do when the credential's deadline passes while the command runs. */
export type OnExpiry = 'warn' | 'kill'

/** Input of {@link runChild}. */
export interface RunChildInput {
  command: string
  args: string[]
  env: Record<string, string>
  /** ms from now until the credential's deadline. */
  msUntilDeadline: number
  onExpiry: OnExpiry
  /** ms between SIGTERM and SIGKILL with `kill`. */
  killGraceMs: number
  /** Told once when the deadline passes (a line on stderr). */
  onDeadline: (action: OnExpiry) => void
  /** Whether jit's stdin is a terminal: then the terminal already sent SIGINT/SIGQUIT to the child's group. */
  interactive: boolean
}

/** How the child ended. */
export type ChildResult = { kind: 'exited'; code: number } | { kind: 'signaled'; signal: NodeJS.Signals; code: number } | { kind: 'spawn-failed'; code: 126 | 127; reason: string }

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']

/**
 * Runs a command the way a shell would: inherited stdin, stdout and stderr, signals forwarded, and the exit status
 * passed through (or 128 + the signal that ended it; 127 when the command is not found, 126 when it cannot run).
 * The environment is the only way the credential reaches it: never argv.
 */
export function runChild(input: RunChildInput): Promise<ChildResult> {
  return new Promise((resolve) => {
    let settled = false
    // Without a terminal the command gets its own process group, so the deadline's SIGTERM/SIGKILL reach everything
    // it started (a shell's children too). On a terminal it stays in the foreground group for job control and Ctrl-C.
    const group = !input.interactive
    const child = spawn(input.command, input.args, { env: input.env, stdio: 'inherit', detached: group })
    const signalAll = (signal: NodeJS.Signals): void => {
      try {
        if (group && child.pid !== undefined) process.kill(-child.pid, signal)
        else child.kill(signal)
      } catch {
        child.kill(signal)
      }
    }
    const forwarders = new Map<NodeJS.Signals, () => void>()
    for (const signal of FORWARDED) {
      const forward = (): void => {
        // A terminal's Ctrl-C / Ctrl-\ already reached the child (same process group): sending it again would
        // make psql cancel twice.
        if (input.interactive && (signal === 'SIGINT' || signal === 'SIGQUIT')) return
        signalAll(signal)
      }
      forwarders.set(signal, forward)
      process.on(signal, forward)
    }
    const timers: NodeJS.Timeout[] = []
    timers.push(
      setTimeout(
        () => {
          input.onDeadline(input.onExpiry)
          if (input.onExpiry === 'kill') {
            signalAll('SIGTERM')
            timers.push(setTimeout(() => signalAll('SIGKILL'), input.killGraceMs).unref())
          }
        },
        Math.max(0, Math.min(input.msUntilDeadline, 2 ** 31 - 1)),
      ).unref(),
    )
    const cleanup = (): void => {
      for (const [signal, forward] of forwarders) process.off(signal, forward)
      for (const t of timers) clearTimeout(t)
    }
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (settled) return
      settled = true
      cleanup()
      if (err.code === 'ENOENT') resolve({ kind: 'spawn-failed', code: 127, reason: `command not found: ${input.command}` })
      else if (err.code === 'EACCES' || err.code === 'ENOEXEC' || err.code === 'EISDIR') {
        resolve({ kind: 'spawn-failed', code: 126, reason: `cannot run ${input.command}: ${err.code === 'EACCES' ? 'permission denied' : err.code}` })
      } else resolve({ kind: 'spawn-failed', code: 126, reason: `cannot run ${input.command}: ${err.message}` })
    })
    child.once('exit', (code, signal) => {
      if (settled) return
      settled = true
      cleanup()
      if (signal) resolve({ kind: 'signaled', signal, code: 128 + (constants.signals[signal] ?? 0) })
      else resolve({ kind: 'exited', code: code ?? 1 })
    })
  })
}
