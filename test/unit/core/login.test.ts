import { describe, expect, it } from 'vitest'
import type { CacheDeps } from '../../../src/core/credential-cache.js'
import { login, type LoginDeps, type LoginReporter } from '../../../src/core/login.js'
import type { CredentialMeta, DevicePollResult, OidcPort, ProviderSession, StateStore } from '../../../src/core/ports.js'
import type { CredentialRequest } from '../../../src/core/request.js'
import { ErrorCode, JitError } from '../../../src/errors.js'
import { memoryStore } from '../../../src/store/memory-store.js'
import type { SecretStore } from '../../../src/store/secret-store.js'
import { fixedClock } from '../../support/clock.js'

const request: CredentialRequest = {
  profile: 'p',
  issuer: 'https://idp.example',
  clientId: 'c',
  scopes: ['db:read', 'openid'],
  resources: ['urn:x'],
  audience: 'api',
  ttlMs: 600_000,
  leewayMs: 30_000,
  store: 'keychain',
  flow: 'device',
}

const silent: LoginReporter = { started() {}, deviceAuthorization() {}, browser() {}, stopped() {}, warn() {} }

function memState(): StateStore {
  const m = new Map<string, CredentialMeta>()
  return { list: () => [...m.values()], get: (k) => m.get(k), put: (x) => void m.set(x.key, x), remove: (ks) => ks.forEach((k) => m.delete(k)) }
}

function setup(poll: (n: number, params: URLSearchParams) => DevicePollResult, opts: { store?: SecretStore } = {}) {
  const clock = fixedClock(1_900_000_000_000)
  const calls = { discover: 0, device: [] as URLSearchParams[], poll: [] as URLSearchParams[] }
  const session: ProviderSession = {
    info: { issuer: request.issuer },
    authorizationUrl: async () => {
      throw new Error('not in this test')
    },
    exchangeCode: async () => {
      throw new Error('not in this test')
    },
    refresh: async () => {
      throw new Error('not in this test')
    },
    revoke: async () => false,
    clientCredentials: async () => {
      throw new Error('not in this test')
    },
    tokenExchange: async () => {
      throw new Error('not in this test')
    },
    startDeviceAuthorization: async (params) => {
      calls.device.push(params)
      return { deviceCode: 'dc', userCode: 'UC', verificationUri: 'https://idp.example/device', expiresIn: 60, interval: 5 }
    },
    pollDeviceToken: async (_code, params) => {
      calls.poll.push(params)
      return poll(calls.poll.length, params)
    },
  }
  const oidc: OidcPort = {
    discover: async () => {
      calls.discover += 1
      return session
    },
  }
  const store = opts.store ?? { ...memoryStore(), kind: 'keychain' as const }
  const sleeps: number[] = []
  const cache: CacheDeps = { storeFor: () => store, state: memState(), warn: () => {} }
  const deps: LoginDeps = {
    ...cache,
    store,
    clock,
    sleep: async (ms) => {
      sleeps.push(ms)
      clock.advance(ms)
    },
    oidc: async () => oidc,
    browser: async () => ({ open: async () => {} }),
    loopback: async () => {
      throw new Error('not in this test')
    },
  }
  return { deps, calls, sleeps, clock, store }
}

async function failure(p: Promise<unknown>): Promise<JitError> {
  try {
    await p
  } catch (err) {
    if (err instanceof JitError) return err
    throw err
  }
  throw new Error('expected a JitError')
}

describe('login (device flow)', () => {
  it('sends scope, resource and audience, and the TTL through the profile\'s parameter', async () => {
    const { deps, calls } = setup(() => ({ status: 'ok', tokens: { accessToken: 'at', tokenType: 'bearer', expiresIn: 3600 } }))
    const res = await login(deps, { request, flow: 'device', allowInsecureLoopback: false, ttlParam: 'ttl', openBrowser: false, reporter: silent })
    expect(calls.device[0]!.get('scope')).toBe('db:read openid')
    expect(calls.device[0]!.getAll('resource')).toEqual(['urn:x'])
    expect(calls.device[0]!.get('audience')).toBe('api')
    expect(calls.poll[0]!.get('ttl')).toBe('600')
    expect(calls.poll[0]!.getAll('resource')).toEqual(['urn:x'])
    expect(res.credential.meta).toMatchObject({ cappedBy: 'ttl', deadline: deps.clock.now() + 600_000 })
  })

  it('probes the store before anything else: an unavailable keychain means no provider call', async () => {
    const broken: SecretStore = {
      kind: 'keychain',
      get: async () => undefined,
      set: async () => {},
      delete: async () => false,
      probe: async () => {
        throw new JitError(ErrorCode.KEYCHAIN_UNAVAILABLE, 'no secret service')
      },
    }
    const { deps, calls } = setup(() => ({ status: 'pending' }), { store: broken })
    const err = await failure(login(deps, { request, flow: 'device', allowInsecureLoopback: false, openBrowser: false, reporter: silent }))
    expect(err.code).toBe(ErrorCode.KEYCHAIN_UNAVAILABLE)
    expect(calls.discover).toBe(0)
  })

  it('gives up by its own clock when the device code expires, even if the provider keeps saying pending', async () => {
    const { deps, sleeps } = setup(() => ({ status: 'pending' }))
    const err = await failure(login(deps, { request, flow: 'device', allowInsecureLoopback: false, openBrowser: false, reporter: silent }))
    expect(err.code).toBe(ErrorCode.DEVICE_CODE_EXPIRED)
    expect(sleeps.reduce((a, b) => a + b, 0)).toBe(60_000)
  })

  it('an abort while waiting ends with JIT_INTERRUPTED and stores nothing', async () => {
    const controller = new AbortController()
    const { deps, store } = setup((n) => {
      if (n === 2) controller.abort()
      return n < 3 ? { status: 'pending' } : { status: 'ok', tokens: { accessToken: 'at', tokenType: 'bearer' } }
    })
    deps.sleep = async (_ms, signal) => {
      if (signal?.aborted) throw signal.reason
    }
    const err = await failure(login(deps, { request, flow: 'device', allowInsecureLoopback: false, openBrowser: false, signal: controller.signal, reporter: silent }))
    expect(err.code).toBe(ErrorCode.INTERRUPTED)
    expect(await store.get('anything')).toBeUndefined()
    expect(deps.state.list()).toEqual([])
  })

  it('refuses a token that is already past its deadline when it arrives', async () => {
    const past = Math.floor(1_900_000_000_000 / 1000) - 60
    const jwt = `e30.${Buffer.from(JSON.stringify({ exp: past })).toString('base64url')}.sig`
    const { deps } = setup(() => ({ status: 'ok', tokens: { accessToken: jwt, tokenType: 'bearer' } }))
    const err = await failure(login(deps, { request, flow: 'device', allowInsecureLoopback: false, openBrowser: false, reporter: silent }))
    expect(err.code).toBe(ErrorCode.INVALID_RESPONSE)
    expect(deps.state.list()).toEqual([])
  })

  it('keeps a narrower grant and says what was not granted', async () => {
    const warnings: string[] = []
    const { deps } = setup(() => ({ status: 'ok', tokens: { accessToken: 'at', tokenType: 'bearer', expiresIn: 60, scope: 'openid' } }))
    const res = await login(deps, {
      request,
      flow: 'device',
      allowInsecureLoopback: false,
      openBrowser: false,
      reporter: { ...silent, warn: (m) => warnings.push(m) },
    })
    expect(res.notGranted).toEqual(['db:read'])
    expect(warnings).toEqual(['the provider did not grant: db:read'])
  })
})
