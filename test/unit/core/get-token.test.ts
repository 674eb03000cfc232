import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { saveCredential, type CacheDeps, type Credential } from '../../../src/core/credential-cache.js'
import { getToken } from '../../../src/core/get-token.js'
import { requestKey, type CredentialRequest } from '../../../src/core/request.js'
import { status } from '../../../src/core/status.js'
import { ErrorCode, JitError } from '../../../src/errors.js'
import { memoryStore } from '../../../src/store/memory-store.js'
import { stateFile } from '../../../src/store/state-file.js'
import { fixedClock, type FixedClock } from '../../support/clock.js'

const request: CredentialRequest = {
  profile: 'prod',
  issuer: 'https://idp.example',
  clientId: 'jit',
  scopes: ['db:read', 'openid'],
  resources: [],
  ttlMs: 3_600_000,
  leewayMs: 30_000,
  store: 'keychain',
  flow: 'device',
}

let dir: string
let clock: FixedClock
let warnings: string[]
let keychain: ReturnType<typeof memoryStore>
let deps: CacheDeps & { clock: FixedClock }

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'jit-unit-'))
  clock = fixedClock(1_800_000_000_000)
  warnings = []
  keychain = memoryStore()
  const warn = (m: string): void => {
    warnings.push(m)
  }
  deps = { storeFor: () => keychain, state: stateFile(dir, warn, clock.now), warn, clock }
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

function credential(deadlineIn: number, token = 'tok-123'): Credential {
  const now = clock.now()
  return {
    accessToken: token,
    tokenType: 'bearer',
    meta: {
      key: requestKey(request),
      profile: 'prod',
      issuer: request.issuer,
      clientId: request.clientId,
      requestedScopes: request.scopes,
      scopes: request.scopes,
      resources: [],
      obtainedAt: now,
      deadline: now + deadlineIn,
      cappedBy: 'ttl',
      store: 'keychain',
      fingerprint: 'abc',
      flow: 'device',
    },
  }
}

const input = { request, minTtlMs: 0, loginCommand: 'jit login --profile prod' }

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    if (err instanceof JitError) return err.code
    throw err
  }
  return 'resolved'
}

describe('getToken', () => {
  it('returns a usable credential', async () => {
    await saveCredential(deps, credential(600_000))
    const { credential: c } = await getToken(deps, input)
    expect(c.accessToken).toBe('tok-123')
  })

  it('refuses inside the leeway and with too little --min-ttl, without deleting', async () => {
    await saveCredential(deps, credential(600_000))
    expect(await codeOf(getToken(deps, { ...input, minTtlMs: 600_000 }))).toBe(ErrorCode.NOT_LOGGED_IN)
    clock.advance(570_000)
    expect(await codeOf(getToken(deps, input))).toBe(ErrorCode.NOT_LOGGED_IN)
    expect(keychain.entries.size).toBe(1)
  })

  it('at the deadline: refuses, deletes the secret and the state entry', async () => {
    await saveCredential(deps, credential(600_000))
    clock.advance(600_000)
    expect(await codeOf(getToken(deps, input))).toBe(ErrorCode.TOKEN_EXPIRED)
    expect(keychain.entries.size).toBe(0)
    expect(deps.state.list()).toEqual([])
  })

  it('never trusts a state file edited to stretch the deadline: the keychain copy wins', async () => {
    await saveCredential(deps, credential(60_000))
    const path = join(dir, 'state.json')
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { credentials: Record<string, { deadline: number }> }
    for (const m of Object.values(doc.credentials)) m.deadline += 86_400_000
    writeFileSync(path, JSON.stringify(doc))
    clock.advance(60_000)
    expect(await codeOf(getToken(deps, input))).toBe(ErrorCode.TOKEN_EXPIRED)
    expect(keychain.entries.size).toBe(0)
  })

  it('a corrupt keychain entry reads as a miss with a warning, and is removed', async () => {
    await saveCredential(deps, credential(600_000))
    keychain.entries.set(requestKey(request), '{"v":1,"accessTo')
    expect(await codeOf(getToken(deps, input))).toBe(ErrorCode.NOT_LOGGED_IN)
    expect(warnings.join('\n')).toContain('corrupt')
    expect(keychain.entries.size).toBe(0)
  })

  it('a corrupt state file reads as a miss with a warning, and is moved aside on the next write', async () => {
    writeFileSync(join(dir, 'state.json'), '{ not json')
    expect(await codeOf(getToken(deps, input))).toBe(ErrorCode.NOT_LOGGED_IN)
    expect(warnings.join('\n')).toMatch(/state file .* is corrupt/)
    await saveCredential(deps, credential(600_000))
    expect((await getToken(deps, input)).credential.accessToken).toBe('tok-123')
  })

  it('an entry the keychain lost reads as a miss and the state entry goes', async () => {
    await saveCredential(deps, credential(600_000))
    keychain.entries.clear()
    expect(await codeOf(getToken(deps, input))).toBe(ErrorCode.NOT_LOGGED_IN)
    expect(deps.state.list()).toEqual([])
  })

  it('cleans up every expired credential it sees, not only the one asked for', async () => {
    await saveCredential(deps, credential(10_000))
    const other = credential(5_000, 'tok-other')
    other.meta = { ...other.meta, key: 'dev/xyz', profile: 'dev' }
    await saveCredential(deps, other)
    clock.advance(20_000)
    const result = await status(deps, {})
    expect(result.removed.map((m) => m.profile).sort()).toEqual(['dev', 'prod'])
    expect(keychain.entries.size).toBe(0)
  })
})
