import { ErrorCode, JitError } from '../errors.js'
import type { Clock } from '../platform/clock.js'
import { buildChildEnv, type EnvMapping } from './child-env.js'
import type { Credential } from './credential-cache.js'
import { formatDuration } from './duration.js'
import type { CredentialRequest } from './request.js'

/** What the child-process port runs (see `src/exec/run-child.ts`). */
export interface ChildSpec {
  command: string
  args: string[]
  env: Record<string, string>
  msUntilDeadline: number
  onExpiry: 'warn' | 'kill'
  killGraceMs: number
  onDeadline: (action: 'warn' | 'kill') => void
}

/** How a child ended, as the port reports it. */
export type ChildOutcome =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: string; code: number }
  | { kind: 'spawn-failed'; code: 126 | 127; reason: string }

/** Input of {@link execWithToken}. */
export interface ExecInput {
  request: CredentialRequest
  command: string
  args: string[]
  mappings: EnvMapping[]
  onExpiry: 'warn' | 'kill'
  killGraceMs: number
  allowNested: boolean
  /** The environment jit itself runs in: the child's starts from it. */
  parentEnv: Readonly<Record<string, string | undefined>>
  /** Variables of jit's own secrets (JIT_STORE_KEY, the client secret's) that the child must not inherit. */
  withhold?: string[]
}

/** Dependencies of {@link execWithToken}. */
export interface ExecDeps {
  clock: Clock
  runChild: (spec: ChildSpec) => Promise<ChildOutcome>
  /**
   * A usable credential: the cached one, or a fresh one where one can be had here (a person at a terminal, a machine
   * flow); throws `JIT_NOT_LOGGED_IN` (exit 4) otherwise.
   */
  obtain: () => Promise<Credential>
  /** One line for the person on stderr. */
  notice: (message: string) => void
  /** Runs after the command ends, e.g. revocation with `--revoke-on-exit`; its failure is a notice, not an exit code. */
  afterExit?: (credential: Credential) => Promise<void>
  /** Records that the credential was used (audit). */
  used?: (credential: Credential) => void
}

/**
 * Runs a command with a usable credential in its environment (never its argv) and returns the exit status to use:
 * the command's, or 128 + the signal that ended it.
 *
 * @throws JitError `JIT_USAGE` when nested inside `jit exec` for the same profile without `allowNested`;
 *   `JIT_NOT_LOGGED_IN`/`JIT_TOKEN_EXPIRED` (exit 4) with no credential and nobody to log in;
 *   `JIT_COMMAND_NOT_FOUND` (127) / `JIT_COMMAND_NOT_EXECUTABLE` (126).
 */
export async function execWithToken(deps: ExecDeps, input: ExecInput): Promise<number> {
  const profile = input.request.profile
  if (!input.allowNested && input.parentEnv.JIT_ACCESS_TOKEN && input.parentEnv.JIT_PROFILE === profile) {
    throw new JitError(ErrorCode.USAGE, `already inside jit exec for profile "${profile}"`, {
      hint: 'the credential is in $JIT_ACCESS_TOKEN already; use --allow-nested to get another',
    })
  }
  const credential = await deps.obtain()
  const now = deps.clock.now()
  // The child gets the credential, not the keys to jit's store or the client secret.
  const parentEnv = { ...input.parentEnv }
  for (const name of input.withhold ?? []) delete parentEnv[name]
  const env = buildChildEnv(parentEnv, credential, input.mappings, now)
  deps.used?.(credential)
  const outcome = await deps.runChild({
    command: input.command,
    args: input.args,
    env,
    msUntilDeadline: credential.meta.deadline - now,
    onExpiry: input.onExpiry,
    killGraceMs: input.killGraceMs,
    onDeadline: (action) =>
      deps.notice(
        action === 'kill'
          ? `the credential of profile "${profile}" reached its deadline; stopping ${input.command} (SIGTERM, then SIGKILL after ${formatDuration(input.killGraceMs)})`
          : `the credential of profile "${profile}" reached its deadline; ${input.command} keeps running, but its token is no longer valid`,
      ),
  })
  if (deps.afterExit) {
    await deps.afterExit(credential).catch((err: unknown) => deps.notice(`after the command: ${err instanceof Error ? err.message : String(err)}`))
  }
  if (outcome.kind === 'spawn-failed') {
    throw new JitError(outcome.code === 127 ? ErrorCode.COMMAND_NOT_FOUND : ErrorCode.COMMAND_NOT_EXECUTABLE, outcome.reason)
  }
  return outcome.code
}
