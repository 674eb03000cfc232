import { describe, expect, it } from 'vitest'
import { ExitCode, exitCodeFor, printError } from '../../../src/cli/exit-codes.js'
import { ErrorCode, JitError } from '../../../src/errors.js'
import { testIO } from '../../support/test-io.js'

describe('exitCodeFor', () => {
  it.each([
    [ErrorCode.USAGE, 2],
    [ErrorCode.PROFILE_NOT_FOUND, 2],
    [ErrorCode.INVALID_TTL, 2],
    [ErrorCode.TTL_ABOVE_MAX, 2],
    [ErrorCode.STORE_UNAVAILABLE, 3],
    [ErrorCode.KEYCHAIN_UNAVAILABLE, 3],
    [ErrorCode.NOT_LOGGED_IN, 4],
    [ErrorCode.TOKEN_EXPIRED, 4],
    [ErrorCode.INTERACTION_REQUIRED, 4],
    [ErrorCode.ACCESS_DENIED, 5],
    [ErrorCode.DEVICE_CODE_EXPIRED, 5],
    [ErrorCode.INTERRUPTED, 130],
    [ErrorCode.IDP_ERROR, 1],
    [ErrorCode.ISSUER_MISMATCH, 1],
    [ErrorCode.DISCOVERY_FAILED, 1],
  ])('%s → %i', (code, exit) => {
    expect(exitCodeFor(new JitError(code, 'x'))).toBe(exit)
  })

  it('maps every error code (no code falls through to undefined)', () => {
    for (const code of Object.values(ErrorCode)) expect(typeof exitCodeFor(new JitError(code, 'x'))).toBe('number')
  })

  it('treats anything that is not a JitError as failure', () => {
    expect(exitCodeFor(new Error('boom'))).toBe(ExitCode.FAILURE)
  })
})

describe('printError', () => {
  it('prints one line and the hint, no stack', () => {
    const io = testIO()
    printError(io, new JitError(ErrorCode.NOT_LOGGED_IN, 'profile "prod" has no cached credential', { hint: 'run: jit login --profile prod' }), false)
    expect(io.stderr()).toBe('jit: profile "prod" has no cached credential\nrun: jit login --profile prod\n')
    expect(io.stdout()).toBe('')
  })

  it('calls an unexpected error a bug and shows the stack only with --debug', () => {
    const io = testIO()
    printError(io, new TypeError('x is undefined'), false)
    expect(io.stderr()).toMatch(/^jit: internal error: x is undefined\nthis is a bug in jit/)
    expect(io.stderr()).not.toContain('    at ')
    const dbg = testIO()
    printError(dbg, new TypeError('x is undefined'), true)
    expect(dbg.stderr()).toContain('TypeError: x is undefined\n    at ')
  })
})
