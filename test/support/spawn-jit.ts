import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = join(ROOT, 'bin', 'jit.js')

/** Fails clearly when `npm run build` has not run (npm test builds first). */
export function assertBuilt(): void {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/ is missing: run npm run build (npm test does)')
}

/** A running `node bin/jit.js ...` with its output collected. */
export interface JitProcess {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves with the exit status (or 128 + signal number). */
  done: Promise<number>
}

/**
 * Starts the built CLI as a child process. The environment is built from scratch: `PATH`, `HOME`, then `env` — so no
 * variable of the developer's session (their D-Bus, their JIT_PROFILE, CI) leaks in unless a test passes it.
 */
export function startJit(args: string[], env: Record<string, string | undefined>, extraNodeArgs: string[] = []): JitProcess {
  const child = spawn(process.execPath, [...extraNodeArgs, BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c))
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c))
  const done = new Promise<number>((resolve) => {
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 9)))
  })
  return { child, stdout: () => out, stderr: () => err, done }
}

/** Runs the built CLI to completion. */
export async function runJit(args: string[], env: Record<string, string | undefined>, extraNodeArgs: string[] = []) {
  const p = startJit(args, env, extraNodeArgs)
  const code = await p.done
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}
