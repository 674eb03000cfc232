import { ErrorCode, JitError, type JitErrorCode } from '../errors.js'
import type { IO } from '../platform/io.js'

/** Exit statuses of DESIGN.md §5. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  STORE_UNAVAILABLE: 3,
  NO_CREDENTIAL: 4,
  REFUSED: 5,
  INTERRUPTED: 130,
  CANNOT_EXECUTE: 126,
  COMMAND_NOT_FOUND: 127,
} as const

const BY_CODE: Record<JitErrorCode, number> = {
  [ErrorCode.USAGE]: ExitCode.USAGE,
  [ErrorCode.PROFILE_NOT_FOUND]: ExitCode.USAGE,
  [ErrorCode.INVALID_TTL]: ExitCode.USAGE,
  [ErrorCode.TTL_ABOVE_MAX]: ExitCode.USAGE,
  [ErrorCode.INSECURE_ISSUER]: ExitCode.USAGE,
  [ErrorCode.STORE_UNAVAILABLE]: ExitCode.STORE_UNAVAILABLE,
  [ErrorCode.KEYCHAIN_UNAVAILABLE]: ExitCode.STORE_UNAVAILABLE,
  [ErrorCode.NOT_LOGGED_IN]: ExitCode.NO_CREDENTIAL,
  [ErrorCode.TOKEN_EXPIRED]: ExitCode.NO_CREDENTIAL,
  [ErrorCode.INTERACTION_REQUIRED]: ExitCode.NO_CREDENTIAL,
  [ErrorCode.ACCESS_DENIED]: ExitCode.REFUSED,
  [ErrorCode.DEVICE_CODE_EXPIRED]: ExitCode.REFUSED,
  [ErrorCode.INTERRUPTED]: ExitCode.INTERRUPTED,
  [ErrorCode.COMMAND_NOT_FOUND]: ExitCode.COMMAND_NOT_FOUND,
  [ErrorCode.COMMAND_NOT_EXECUTABLE]: ExitCode.CANNOT_EXECUTE,
  [ErrorCode.IDP_ERROR]: ExitCode.FAILURE,
  [ErrorCode.DISCOVERY_FAILED]: ExitCode.FAILURE,
  [ErrorCode.ISSUER_MISMATCH]: ExitCode.FAILURE,
  [ErrorCode.INVALID_RESPONSE]: ExitCode.FAILURE,
  [ErrorCode.NETWORK]: ExitCode.FAILURE,
  [ErrorCode.LOGIN_TIMEOUT]: ExitCode.FAILURE,
  [ErrorCode.PORT_IN_USE]: ExitCode.FAILURE,
  [ErrorCode.LOCK_TIMEOUT]: ExitCode.FAILURE,
  [ErrorCode.SUBJECT_TOKEN_UNAVAILABLE]: ExitCode.NO_CREDENTIAL,
  [ErrorCode.UNSAFE_URL]: ExitCode.FAILURE,
  [ErrorCode.CONFIG]: ExitCode.FAILURE,
}

/** The exit status for an error: the one translation point from error codes to numbers. */
export function exitCodeFor(err: unknown): number {
  return err instanceof JitError ? BY_CODE[err.code] : ExitCode.FAILURE
}

const ISSUES_URL = 'https://github.com/jit-credentials/jit/issues'

/**
 * Prints an error once, on stderr: `jit: <message>`, then a hint line where there is a next step. The stack only with
 * `--debug`. Anything that is not a {@link JitError} is a bug in jit and says so.
 */
export function printError(io: IO, err: unknown, debug: boolean, style: (s: string) => string = (s) => s): void {
  if (err instanceof JitError) {
    io.err.write(`${style('jit:')} ${oneLine(err.message)}\n`)
    if (err.hint) io.err.write(`${err.hint}\n`)
    if (debug) io.err.write(`${err.code}\n${stackOf(err)}\n`)
    return
  }
  const message = err instanceof Error ? err.message : String(err)
  io.err.write(`${style('jit:')} internal error: ${oneLine(message)}\n`)
  io.err.write(`this is a bug in jit; please report it at ${ISSUES_URL}${debug ? '' : ' (add --debug for details)'}\n`)
  if (debug) io.err.write(`${stackOf(err)}\n`)
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ')
}

function stackOf(err: unknown): string {
  const lines: string[] = []
  let current: unknown = err
  for (let depth = 0; current instanceof Error && depth < 5; depth += 1) {
    lines.push(depth === 0 ? (current.stack ?? current.message) : `caused by: ${current.stack ?? current.message}`)
    current = current.cause
  }
  return lines.join('\n')
}
