/**
 * The one error type jit throws on purpose. Every failure a user can meet is a {@link JitError} with a code from
 * {@link ErrorCode}; `src/cli/exit-codes.ts` is the single place that turns a code into an exit status and a message.
 */
export const ErrorCode = {
  /** Bad flag, bad value, unknown profile: exit 2. */
  USAGE: 'JIT_USAGE',
  PROFILE_NOT_FOUND: 'JIT_PROFILE_NOT_FOUND',
  INVALID_TTL: 'JIT_INVALID_TTL',
  TTL_ABOVE_MAX: 'JIT_TTL_ABOVE_MAX',
  /** The keychain or the chosen store cannot be used: exit 3. */
  STORE_UNAVAILABLE: 'JIT_STORE_UNAVAILABLE',
  KEYCHAIN_UNAVAILABLE: 'JIT_KEYCHAIN_UNAVAILABLE',
  /** No usable credential and no way to get one here: exit 4. */
  NOT_LOGGED_IN: 'JIT_NOT_LOGGED_IN',
  TOKEN_EXPIRED: 'JIT_TOKEN_EXPIRED',
  INTERACTION_REQUIRED: 'JIT_INTERACTION_REQUIRED',
  /** The person or the provider said no: exit 5. */
  ACCESS_DENIED: 'JIT_ACCESS_DENIED',
  DEVICE_CODE_EXPIRED: 'JIT_DEVICE_CODE_EXPIRED',
  /** `jit exec`: the command could not be found (127) or run (126), as a shell says. */
  COMMAND_NOT_FOUND: 'JIT_COMMAND_NOT_FOUND',
  COMMAND_NOT_EXECUTABLE: 'JIT_COMMAND_NOT_EXECUTABLE',
  /** Ctrl-C: exit 130. */
  INTERRUPTED: 'JIT_INTERRUPTED',
  /** Everything else: exit 1. */
  IDP_ERROR: 'JIT_IDP_ERROR',
  DISCOVERY_FAILED: 'JIT_DISCOVERY_FAILED',
  ISSUER_MISMATCH: 'JIT_ISSUER_MISMATCH',
  INVALID_RESPONSE: 'JIT_INVALID_RESPONSE',
  NETWORK: 'JIT_NETWORK',
  LOGIN_TIMEOUT: 'JIT_LOGIN_TIMEOUT',
  PORT_IN_USE: 'JIT_PORT_IN_USE',
  LOCK_TIMEOUT: 'JIT_LOCK_TIMEOUT',
  SUBJECT_TOKEN_UNAVAILABLE: 'JIT_SUBJECT_TOKEN_UNAVAILABLE',
  INSECURE_ISSUER: 'JIT_INSECURE_ISSUER',
  UNSAFE_URL: 'JIT_UNSAFE_URL',
  CONFIG: 'JIT_CONFIG',
} as const

export type JitErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export interface JitErrorOptions {
  cause?: unknown
  /** The next step for the person, printed on its own line (e.g. `run: jit login --profile prod`). */
  hint?: string
}

/**
 * A failure jit expects and can explain. Messages are lowercase, one line, with no final period, and never carry a
 * token or secret.
 */
export class JitError extends Error {
  readonly code: JitErrorCode
  readonly hint: string | undefined

  constructor(code: JitErrorCode, message: string, options: JitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'JitError'
    this.code = code
    this.hint = options.hint
  }
}

/** True when `err` is a {@link JitError}, optionally with the given code. */
export function isJitError(err: unknown, code?: JitErrorCode): err is JitError {
  return err instanceof JitError && (code === undefined || err.code === code)
}
