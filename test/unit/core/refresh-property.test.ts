import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { saveCredential, type CacheDeps } from '../../../src/core/credential-cache.js'
import { getToken } from '../../../src/core/get-token.js'
import type { CredentialMeta, OidcPort, ProviderSession, StateStore } from '../../../src/core/ports.js'
import { refreshCredential } from '../../../src/core/refresh.js'
import { requestKey, type CredentialRequest } from '../../../src/core/request.js'
import { JitError } from '../../../src/errors.js'
import { memoryStore } from '../../../src/store/memory-store.js'
import { fixedClock } from '../../support/clock.js'

const T0 = 1_900_000_000_000

function memState(): StateStore {
  const m = new Map<string, CredentialMeta>()
  return { list: () => [...m.values()], get: (k) => m.get(k), put: (x) => void m.set(x.key, x), remove: (ks) => ks.forEach((k) => m.delete(k)) }
}

describe('refresh never carries a credential past login + TTL (property)', () => {
  it('across random clocks, TTLs, provider lifetimes and refresh times', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 60_000, max: 4 * 3_600_000 }),
        fc.array(fc.integer({ min: 0, max: 1_800_000 }), { minLength: 1, maxLength: 25 }),
        fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 0, max: 600_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        async (ttlMs, steps, lifetimesSec, minTtlMs, leewayMs) => {
          const clock = fixedClock(T0)
          const store = memoryStore()
          const cache: CacheDeps = { storeFor: () => store, state: memState(), warn: () => {} }
          const request: CredentialRequest = {
            profile: 'p', issuer: 'https://idp', clientId: 'c', scopes: ['openid'], resources: [], ttlMs, leewayMs, store: 'keychain', flow: 'device', allowRefresh: true,
          }
          let n = 0
          const session = {
            refresh: async () => ({ accessToken: `a${++n}`, tokenType: 'bearer', expiresIn: lifetimesSec[n % lifetimesSec.length] }),
          } as unknown as ProviderSession
          const oidc: OidcPort = { discover: async () => session }
          const first = Math.min(lifetimesSec[0]! * 1000, ttlMs)
          await saveCredential(cache, {
            accessToken: 'a0',
            tokenType: 'bearer',
            refreshToken: 'r',
            meta: {
              key: requestKey(request), profile: 'p', issuer: 'https://idp', clientId: 'c', requestedScopes: ['openid'], scopes: ['openid'], resources: [],
              obtainedAt: T0, deadline: T0 + first, cappedBy: 'ttl', loginDeadline: T0 + ttlMs, refreshable: true, store: 'keychain', fingerprint: 'f', flow: 'device',
            },
          })
          const refresh = (c: Parameters<typeof refreshCredential>[1]['credential']) => refreshCredential({ ...cache, clock, oidc: async () => oidc }, { credential: c, allowInsecureLoopback: false })
          for (const step of steps) {
            clock.advance(step)
            try {
              const { credential } = await getToken({ ...cache, clock, refresh }, { request, minTtlMs, loginCommand: 'jit login' })
              // Whatever the provider said, nothing is handed out at or after login + TTL, nor promised past it
              expect(clock.now()).toBeLessThan(T0 + ttlMs)
              expect(credential.meta.deadline).toBeLessThanOrEqual(T0 + ttlMs)
              expect(clock.now() + leewayMs + minTtlMs).toBeLessThan(credential.meta.deadline)
            } catch (err) {
              if (!(err instanceof JitError)) throw err
            }
          }
          // Past login + TTL the refresh token is gone with the credential
          clock.set(Math.max(clock.now(), T0 + ttlMs))
          await expect(getToken({ ...cache, clock, refresh }, { request, minTtlMs: 0, loginCommand: 'jit login' })).rejects.toBeInstanceOf(JitError)
          expect(store.entries.size).toBe(0)
          expect(cache.state.list()).toEqual([])
        },
      ),
      { numRuns: 300 },
    )
  })
})
