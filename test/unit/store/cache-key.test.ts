import { describe, expect, it } from 'vitest'
import { cacheKey, tokenFingerprint } from '../../../src/store/cache-key.js'

const base = { profile: 'prod', issuer: 'https://idp.example', clientId: 'jit', scopes: ['openid', 'db:read'], resources: [] as string[] }

describe('cacheKey', () => {
  it('is <profile>/<sha256 hex>', () => {
    expect(cacheKey(base)).toMatch(/^prod\/[0-9a-f]{64}$/)
  })

  it('ignores the order and repetition of scopes and resources', () => {
    expect(cacheKey({ ...base, scopes: ['db:read', 'openid', 'db:read'] })).toBe(cacheKey(base))
    expect(cacheKey({ ...base, resources: ['b', 'a'] })).toBe(cacheKey({ ...base, resources: ['a', 'b'] }))
  })

  it.each([
    ['issuer', { issuer: 'https://other.example' }],
    ['client', { clientId: 'other' }],
    ['scopes', { scopes: ['openid', 'db:write'] }],
    ['resources', { resources: ['urn:x'] }],
    ['audience', { audience: 'api' }],
    ['acr', { acr: 'mfa' }],
  ])('changes with the %s', (_name, change) => {
    expect(cacheKey({ ...base, ...change })).not.toBe(cacheKey(base))
  })

  it('cannot be confused by a scope that looks like a separator', () => {
    expect(cacheKey({ ...base, scopes: ['a b'] })).not.toBe(cacheKey({ ...base, scopes: ['a', 'b'] }))
  })

  it('fingerprints are short and do not contain the token', () => {
    const fp = tokenFingerprint('secret-token-value')
    expect(fp).toMatch(/^[0-9a-f]{12}$/)
    expect(fp).not.toContain('secret')
  })
})
