import { runCli } from '../../src/cli/program.js'
import type { TestDeps } from './deps.js'

/** Runs `jit ...args` in-process and returns the exit status with what was printed. */
export async function jit(deps: TestDeps, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const outBefore = deps.io.stdout().length
  const errBefore = deps.io.stderr().length
  const code = await runCli(['node', 'jit', ...args], deps)
  return { code, stdout: deps.io.stdout().slice(outBefore), stderr: deps.io.stderr().slice(errBefore) }
}

/** Waits until a JSON event line with `event === name` appears on the captured stderr, and returns it. */
export async function waitForEvent(read: () => string, name: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs
  for (;;) {
    for (const line of read().split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        const event = JSON.parse(line) as Record<string, unknown>
        if (event.event === name) return event
      } catch {
        // not a JSON line
      }
    }
    if (Date.now() > until) throw new Error(`no "${name}" event within ${timeoutMs} ms; stderr so far:\n${read()}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** All JSON events printed so far. */
export function events(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}
