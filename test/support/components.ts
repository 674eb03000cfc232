import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { beforeAll, describe } from 'vitest'

/** The answer of a component check: present, or missing with a reason a person can act on. */
export type ComponentCheck = { ok: true } | { ok: false; reason: string }

/** What a suite needs to know about a real component it depends on. */
export interface ComponentGate {
  /** True when the suite should be skipped: the component is missing and this is not CI. */
  readonly skip: boolean
  /** Why the component is missing; `undefined` when it is present. */
  readonly reason: string | undefined
  /** Throws the reason when the component is missing (under CI the suite runs, and this makes each test fail). */
  require(): void
}

/** True under CI (`CI=true`, or any value but empty, `0` and `false`). */
export function isCI(env: Record<string, string | undefined> = process.env): boolean {
  const ci = env.CI?.trim().toLowerCase()
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false'
}

/**
 * Checks a real component once. Missing outside CI: `skip` is true and the reason is printed (console.warn). Missing
 * under CI: `skip` is false so the suite runs, and {@link ComponentGate.require} (called first in `beforeAll`) fails
 * each test with the reason. Prefer {@link describeWithComponent}, which wires both.
 */
export function componentGate(name: string, check: () => ComponentCheck): ComponentGate {
  let result: ComponentCheck
  try {
    result = check()
  } catch (err) {
    result = { ok: false, reason: err instanceof Error ? err.message : String(err) }
  }
  if (result.ok) return { skip: false, reason: undefined, require: () => {} }
  const reason = `${name}: ${result.reason}`
  const ci = isCI()
  if (!ci) console.warn(`skipping tests that need ${reason}`)
  return {
    skip: !ci,
    reason,
    require: () => {
      throw new Error(`CI needs ${reason}`)
    },
  }
}

/**
 * `describe` for a suite that needs a real component: skipped with a printed reason when it is missing, failing with
 * the reason under CI.
 */
export function describeWithComponent(title: string, gate: ComponentGate, body: () => void): void {
  describe.skipIf(gate.skip)(title, () => {
    beforeAll(() => gate.require())
    body()
  })
}

/** A {@link ComponentCheck} that the given executables are on `PATH`. */
export function commandsOnPath(commands: readonly string[], path = process.env.PATH ?? ''): ComponentCheck {
  const missing = commands.filter((command) => !findOnPath(command, path))
  return missing.length === 0 ? { ok: true } : { ok: false, reason: `not on PATH: ${missing.join(', ')}` }
}

/** The full path of an executable on `PATH`, or `undefined`. */
export function findOnPath(command: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, command)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}
