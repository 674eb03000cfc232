/**
 * The local provider's policy features that jit's least-privilege, refresh, revocation and MFA checks are tested
 * against, proved with plain fetch (no jit): two resource servers, refresh tokens, acr/amr/auth_time, over-broad
 * grants on demand, and RFC 7009 revocation.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose'
import {
  ACR_VALUES,
  API_RESOURCE,
  CLI_CLIENT_ID,
  DB_RESOURCE,
  startLocalProvider,
  type LocalProvider,
  type UserAgentOptions,
} from '../../scripts/local-provider.mjs'

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'
const REDIRECT_URI = 'http://127.0.0.1:53682/callback'

type Json = Record<string, unknown>
type Form = Record<string, string | string[] | undefined>

interface Answer {
  status: number
  body: Json
}

/** A urlencoded form; a list becomes a repeated parameter, undefined is left out. */
function form(fields: Form): URLSearchParams {
  const out = new URLSearchParams()
  for (const [name, value] of Object.entries(fields)) {
    for (const v of value === undefined ? [] : Array.isArray(value) ? value : [value]) out.append(name, v)
  }
  return out
}

async function post(op: LocalProvider, path: string, fields: Form, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${op.issuer}${path}`, { method: 'POST', body: form(fields), headers })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Json) }
}

/** Device authorization, approval by the scripted user agent, one token request with `token` fields added. */
async function deviceLogin(op: LocalProvider, auth: Form, ua: UserAgentOptions = {}, token: Form = {}) {
  const device = await post(op, '/device/auth', { client_id: CLI_CLIENT_ID, ...auth })
  expect(device.status, JSON.stringify(device.body)).toBe(200)
  await op.approveDevice(String(device.body.verification_uri_complete), ua)
  const poll = (extra: Form) =>
    post(op, '/token', { client_id: CLI_CLIENT_ID, grant_type: DEVICE_GRANT, device_code: String(device.body.device_code), ...extra })
  return { answer: await poll(token), poll }
}

/** Authorization code + PKCE (optionally through PAR), signed in by the scripted user agent, then the code exchange. */
async function codeLogin(op: LocalProvider, auth: Form, ua: UserAgentOptions = {}, token: Form = {}, par = false) {
  const verifier = randomBytes(32).toString('base64url')
  const request: Form = {
    client_id: CLI_CLIENT_ID,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
    ...auth,
  }
  let url = `${op.issuer}/auth?${form(request).toString()}`
  if (par) {
    const pushed = await post(op, '/request', request)
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(201)
    url = `${op.issuer}/auth?${form({ client_id: CLI_CLIENT_ID, request_uri: String(pushed.body.request_uri) }).toString()}`
  }
  const callback = new URL(await op.authorize(url, ua))
  const code = callback.searchParams.get('code')
  expect(code, callback.href).toBeTruthy()
  return post(op, '/token', {
    client_id: CLI_CLIENT_ID,
    grant_type: 'authorization_code',
    code: String(code),
    redirect_uri: REDIRECT_URI,
    code_verifier: verifier,
    ...token,
  })
}

const refresh = (op: LocalProvider, refreshToken: unknown, extra: Form = {}) =>
  post(op, '/token', { client_id: CLI_CLIENT_ID, grant_type: 'refresh_token', refresh_token: String(refreshToken), ...extra })

const revoke = (op: LocalProvider, token: unknown, hint?: string) =>
  post(op, '/token/revocation', { client_id: CLI_CLIENT_ID, token: String(token), token_type_hint: hint })

async function accessClaims(op: LocalProvider, token: unknown, audience: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(String(token), createLocalJWKSet(op.publicJwks), { issuer: op.issuer, audience })
  return payload
}

async function idClaims(op: LocalProvider, token: unknown): Promise<JWTPayload> {
  const { payload } = await jwtVerify(String(token), createLocalJWKSet(op.publicJwks), { issuer: op.issuer, audience: CLI_CLIENT_ID })
  return payload
}

const nowSeconds = () => Math.floor(Date.now() / 1000)
const scopes = (value: unknown) => String(value).split(' ').sort()

let op: LocalProvider

beforeAll(async () => {
  op = await startLocalProvider({ deviceInterval: 0.05 })
})

afterAll(async () => {
  await op?.close()
})

describe('local provider policy: discovery', () => {
  it('advertises revocation, introspection, both resource servers\' scopes, the ACRs and the auth claims', async () => {
    const res = await fetch(`${op.issuer}/.well-known/openid-configuration`)
    const discovery = (await res.json()) as Json
    expect(discovery.revocation_endpoint).toBe(`${op.issuer}/token/revocation`)
    expect(discovery.introspection_endpoint).toBe(`${op.issuer}/token/introspection`)
    expect(discovery.scopes_supported).toEqual(expect.arrayContaining(['offline_access', 'db:read', 'db:write', 'api:read', 'api:write']))
    expect(discovery.acr_values_supported).toEqual([...ACR_VALUES])
    expect(discovery.claims_supported).toEqual(expect.arrayContaining(['acr', 'amr', 'auth_time']))
    expect(discovery.grant_types_supported).toEqual(expect.arrayContaining(['refresh_token', DEVICE_GRANT]))
    expect(op.apiResource).toBe(API_RESOURCE)
  })
})

describe('local provider policy: two resource servers', () => {
  it('device flow: one login grants both; each token request names one resource, a refresh gets the other', async () => {
    const both = [DB_RESOURCE, API_RESOURCE]
    const { answer: first, poll } = await deviceLogin(
      op, { scope: 'openid offline_access db:read api:read', resource: both }, {}, { resource: API_RESOURCE },
    )
    expect(first.status, JSON.stringify(first.body)).toBe(200)
    expect(first.body.scope).toBe('api:read')
    const api = await accessClaims(op, first.body.access_token, API_RESOURCE)
    expect(api.scope).toBe('api:read')
    expect(typeof first.body.refresh_token).toBe('string')

    const second = await refresh(op, first.body.refresh_token, { resource: DB_RESOURCE })
    expect(second.status, JSON.stringify(second.body)).toBe(200)
    const db = await accessClaims(op, second.body.access_token, DB_RESOURCE)
    expect(db.scope).toBe('db:read')

    // The device code is single-use: asking it again (even for the other resource) is a replay, which also revokes
    // everything issued from the grant.
    const replay = await poll({ resource: DB_RESOURCE })
    expect(replay.body.error).toBe('invalid_grant')
    expect((await refresh(op, second.body.refresh_token, { resource: API_RESOURCE })).body.error).toBe('invalid_grant')
  })

  it('authorization code flow: the same, and without offline_access the second resource takes a second login', async () => {
    const auth = { scope: 'openid db:read db:write api:read', resource: [DB_RESOURCE, API_RESOURCE] }
    const first = await codeLogin(op, auth, {}, { resource: DB_RESOURCE })
    expect(first.status, JSON.stringify(first.body)).toBe(200)
    expect(scopes((await accessClaims(op, first.body.access_token, DB_RESOURCE)).scope)).toEqual(['db:read', 'db:write'])
    expect(first.body.refresh_token).toBeUndefined()

    const second = await codeLogin(op, auth, {}, { resource: API_RESOURCE })
    expect(second.status, JSON.stringify(second.body)).toBe(200)
    expect((await accessClaims(op, second.body.access_token, API_RESOURCE)).scope).toBe('api:read')
  })

  it('no resource at the token endpoint is ambiguous: invalid_target, and the code is spent', async () => {
    const { answer, poll } = await deviceLogin(op, { scope: 'openid db:read api:read', resource: [DB_RESOURCE, API_RESOURCE] })
    expect(answer.status).toBe(400)
    expect(answer.body.error).toBe('invalid_target')
    expect((await poll({ resource: DB_RESOURCE })).body.error).toBe('invalid_grant')
  })

  it('a refresh without resource is ambiguous too, and spends the refresh token (rotated before the check)', async () => {
    const { answer } = await deviceLogin(
      op, { scope: 'openid offline_access db:read api:read', resource: [DB_RESOURCE, API_RESOURCE] }, {}, { resource: DB_RESOURCE },
    )
    expect(answer.status).toBe(200)
    const ambiguous = await refresh(op, answer.body.refresh_token)
    expect(ambiguous.body.error).toBe('invalid_target')
    expect((await refresh(op, answer.body.refresh_token, { resource: DB_RESOURCE })).body.error).toBe('invalid_grant')
  })

  it('without a resource parameter, scopes pick their resource servers (both → both, then one must be named)', async () => {
    const api = await codeLogin(op, { scope: 'openid api:write' })
    expect(api.status, JSON.stringify(api.body)).toBe(200)
    expect((await accessClaims(op, api.body.access_token, API_RESOURCE)).scope).toBe('api:write')

    const { answer } = await deviceLogin(op, { scope: 'openid db:read api:read' }, {}, { resource: API_RESOURCE })
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect((await accessClaims(op, answer.body.access_token, API_RESOURCE)).scope).toBe('api:read')
  })

  it('rejects an unknown resource at the authorization request', async () => {
    const device = await post(op, '/device/auth', { client_id: CLI_CLIENT_ID, scope: 'openid db:read', resource: 'urn:jit:other' })
    expect(device.status).toBe(400)
    expect(device.body.error).toBe('invalid_target')
  })
})

describe('local provider policy: refresh tokens', () => {
  it('issues none without offline_access', async () => {
    const { answer } = await deviceLogin(op, { scope: 'openid db:read' })
    expect(answer.status).toBe(200)
    expect(answer.body.refresh_token).toBeUndefined()
  })

  it('device flow with offline_access: a refresh token; a refresh honours ttl and rotates it; reuse revokes the grant', async () => {
    const { answer } = await deviceLogin(op, { scope: 'openid offline_access db:read' }, {}, { ttl: '120' })
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect(answer.body.expires_in).toBe(120)
    const first = String(answer.body.refresh_token)
    expect(first).toMatch(/^[\w-]{20,}$/)

    const refreshed = await refresh(op, first, { ttl: '30' })
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200)
    expect(refreshed.body.expires_in).toBe(30)
    const claims = await accessClaims(op, refreshed.body.access_token, DB_RESOURCE)
    expect(claims.exp! - claims.iat!).toBe(30)
    expect(claims.scope).toBe('db:read')
    expect(refreshed.body.scope).toBe('db:read')
    const second = String(refreshed.body.refresh_token)
    expect(second).not.toBe(first)

    // A refresh may narrow the scope, never widen it.
    const narrowed = await refresh(op, second, { scope: 'openid db:write' })
    expect(narrowed.body.error).toBe('invalid_scope')

    // The rotated-out token again: reuse detection revokes the whole grant, the newest refresh token included.
    const reused = await refresh(op, first)
    expect(reused.body.error).toBe('invalid_grant')
    expect((await refresh(op, second)).body.error).toBe('invalid_grant')
  })

  it('authorization code flow with offline_access and no prompt=consent: a refresh token (also through PAR)', async () => {
    const direct = await codeLogin(op, { scope: 'openid offline_access db:read' })
    expect(direct.status, JSON.stringify(direct.body)).toBe(200)
    expect(typeof direct.body.refresh_token).toBe('string')

    const pushed = await codeLogin(op, { scope: 'openid offline_access db:read', prompt: 'login' }, {}, {}, true)
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(200)
    expect(typeof pushed.body.refresh_token).toBe('string')
    expect((await refresh(op, pushed.body.refresh_token)).status).toBe(200)
  })

  it('refresh tokens live refreshTokenTtl seconds (default one day)', async () => {
    const { answer } = await deviceLogin(op, { scope: 'openid offline_access' })
    const info = await op.introspect(String(answer.body.refresh_token), 'refresh_token')
    expect(info.active).toBe(true)
    expect(info.exp! - info.iat!).toBe(86_400)

    const short = await startLocalProvider({ refreshTokenTtl: 120 })
    try {
      const { answer: shortAnswer } = await deviceLogin(short, { scope: 'openid offline_access' })
      const shortInfo = await short.introspect(String(shortAnswer.body.refresh_token))
      expect(shortInfo.exp! - shortInfo.iat!).toBe(120)
      const rotated = await refresh(short, shortAnswer.body.refresh_token)
      const rotatedInfo = await short.introspect(String(rotated.body.refresh_token))
      expect(rotatedInfo.exp! - rotatedInfo.iat!).toBe(120)
    } finally {
      await short.close()
    }
  })
})

describe('local provider policy: acr, amr and auth_time', () => {
  it('an ordinary login: acr urn:jit:loa:1, amr [pwd], auth_time now, in every ID token (no max_age needed)', async () => {
    const before = nowSeconds()
    const { answer } = await deviceLogin(op, { scope: 'openid offline_access db:read' })
    const id = await idClaims(op, answer.body.id_token)
    expect(id.acr).toBe('urn:jit:loa:1')
    expect(id.amr).toEqual(['pwd'])
    expect(id.auth_time).toBeGreaterThanOrEqual(before)
    expect(id.auth_time).toBeLessThanOrEqual(nowSeconds())

    // A refresh's ID token repeats the login's facts.
    const refreshed = await refresh(op, answer.body.refresh_token)
    const again = await idClaims(op, refreshed.body.id_token)
    expect(again).toMatchObject({ acr: id.acr, amr: id.amr, auth_time: id.auth_time })
  })

  it('an MFA login as scripted: acr urn:jit:loa:2, amr [pwd, otp], in both flows', async () => {
    const mfa = { acr: 'urn:jit:loa:2', amr: ['pwd', 'otp'] }
    const code = await codeLogin(op, { scope: 'openid db:read', acr_values: 'urn:jit:loa:2' }, mfa)
    expect(await idClaims(op, code.body.id_token)).toMatchObject(mfa)
    const { answer } = await deviceLogin(op, { scope: 'openid db:read', acr_values: 'urn:jit:loa:2' }, mfa)
    expect(await idClaims(op, answer.body.id_token)).toMatchObject(mfa)
  })

  it('acr_values=urn:jit:loa:2 answered by a loa:1 login still gets tokens, with acr loa:1 (the client must refuse)', async () => {
    const code = await codeLogin(op, { scope: 'openid db:read', acr_values: 'urn:jit:loa:2' })
    expect(code.status).toBe(200)
    expect(typeof code.body.access_token).toBe('string')
    expect(await idClaims(op, code.body.id_token)).toMatchObject({ acr: 'urn:jit:loa:1', amr: ['pwd'] })
  })

  it('authTime scripts an old sign-in: auth_time older than the requested max_age, tokens issued anyway', async () => {
    const longAgo = nowSeconds() - 3600
    const code = await codeLogin(op, { scope: 'openid db:read', max_age: '60' }, { authTime: longAgo })
    expect(code.status).toBe(200)
    expect((await idClaims(op, code.body.id_token)).auth_time).toBe(longAgo)

    const { answer } = await deviceLogin(op, { scope: 'openid db:read', max_age: '60' }, { authTime: longAgo })
    expect(answer.status).toBe(200)
    expect((await idClaims(op, answer.body.id_token)).auth_time).toBe(longAgo)
  })

  it('refuses nonsense from the scripted user agent before any request', async () => {
    await expect(op.authorize(`${op.issuer}/auth`, { acr: '' })).rejects.toThrow(/acr/)
    await expect(op.approveDevice(`${op.issuer}/device`, { amr: [] })).rejects.toThrow(/amr/)
    await expect(op.approveDevice(`${op.issuer}/device`, { authTime: 1.5 })).rejects.toThrow(/authTime/)
  })
})

describe('local provider policy: over-broad grants', () => {
  it('setGrantExtraScopes widens every access token and the token response scope, until reset', async () => {
    op.setGrantExtraScopes(['db:write', 'db:admin'])
    try {
      expect(op.grantExtraScopes).toEqual(['db:write', 'db:admin'])
      const { answer } = await deviceLogin(op, { scope: 'openid offline_access db:read' })
      expect(answer.status).toBe(200)
      expect(scopes(answer.body.scope)).toEqual(['db:admin', 'db:read', 'db:write'])
      expect(scopes((await accessClaims(op, answer.body.access_token, DB_RESOURCE)).scope)).toEqual(['db:admin', 'db:read', 'db:write'])

      const refreshed = await refresh(op, answer.body.refresh_token)
      expect(scopes(refreshed.body.scope)).toEqual(['db:admin', 'db:read', 'db:write'])

      // Opaque tokens too: introspection shows the widened scope.
      const opaque = await codeLogin(op, { scope: 'openid' })
      expect(scopes(opaque.body.scope)).toEqual(['db:admin', 'db:write', 'openid'])
      expect(scopes((await op.introspect(String(opaque.body.access_token))).scope)).toEqual(['db:admin', 'db:write', 'openid'])
    } finally {
      op.setGrantExtraScopes([])
    }
    const { answer } = await deviceLogin(op, { scope: 'openid db:read' })
    expect(answer.body.scope).toBe('db:read')
    expect((await accessClaims(op, answer.body.access_token, DB_RESOURCE)).scope).toBe('db:read')
  })

  it('grantExtraScopes at start applies to client credentials too; garbage is refused', async () => {
    const wide = await startLocalProvider({ grantExtraScopes: ['api:write'] })
    try {
      const basic = `Basic ${Buffer.from(`${wide.ciClientId}:${wide.ciClientSecret}`).toString('base64')}`
      const cc = await post(wide, '/token', { grant_type: 'client_credentials', scope: 'db:read', resource: DB_RESOURCE }, { authorization: basic })
      expect(cc.status, JSON.stringify(cc.body)).toBe(200)
      expect(scopes(cc.body.scope)).toEqual(['api:write', 'db:read'])
      expect(scopes((await accessClaims(wide, cc.body.access_token, DB_RESOURCE)).scope)).toEqual(['api:write', 'db:read'])
      expect(() => wide.setGrantExtraScopes(['two words'])).toThrow(TypeError)
      expect(() => wide.setGrantExtraScopes('db:write' as unknown as string[])).toThrow(TypeError)
    } finally {
      await wide.close()
    }
  })
})

describe('local provider policy: revocation (RFC 7009)', () => {
  it('a revoked opaque access token gets 401 at userinfo and is inactive at introspection', async () => {
    const { answer } = await deviceLogin(op, { scope: 'openid' })
    const token = String(answer.body.access_token)
    expect(token.split('.')).toHaveLength(1) // opaque: no resource, no JWT
    expect(await op.userinfo(token)).toBe(200)
    expect(await op.introspect(token)).toMatchObject({ active: true, client_id: CLI_CLIENT_ID, sub: 'alice', scope: 'openid' })

    const revoked = await revoke(op, token, 'access_token')
    expect(revoked.status).toBe(200)
    expect(await op.userinfo(token)).toBe(401)
    expect(await op.introspect(token)).toEqual({ active: false })
    // Revoking again (or an unknown token) is still 200.
    expect((await revoke(op, token)).status).toBe(200)
  })

  it('a revoked refresh token gets invalid_grant on refresh, and takes the grant\'s access tokens with it', async () => {
    const { answer } = await deviceLogin(op, { scope: 'openid offline_access' })
    const accessToken = String(answer.body.access_token)
    expect(await op.userinfo(accessToken)).toBe(200)
    expect((await op.introspect(String(answer.body.refresh_token))).active).toBe(true)

    expect((await revoke(op, answer.body.refresh_token, 'refresh_token')).status).toBe(200)
    const refused = await refresh(op, answer.body.refresh_token)
    expect(refused.status).toBe(400)
    expect(refused.body.error).toBe('invalid_grant')
    expect((await op.introspect(String(answer.body.refresh_token))).active).toBe(false)
    expect(await op.userinfo(accessToken)).toBe(401)
  })

  it('revoking a JWT access token answers 200 but changes nothing: it stays valid until exp', async () => {
    const { answer } = await deviceLogin(op, { scope: 'openid db:read' })
    const token = String(answer.body.access_token)
    expect((await op.introspect(token)).active).toBe(false) // oidc-provider 8 cannot look a JWT up, even a valid one

    const revoked = await revoke(op, token, 'access_token')
    expect(revoked.status).toBe(200)
    const claims = await accessClaims(op, token, DB_RESOURCE)
    expect(claims.exp).toBeGreaterThan(nowSeconds())
  })

  it('a client may not revoke another client\'s token', async () => {
    const { answer } = await deviceLogin(op, { scope: 'openid' })
    const basic = `Basic ${Buffer.from(`${op.ciClientId}:${op.ciClientSecret}`).toString('base64')}`
    const refused = await post(op, '/token/revocation', { token: String(answer.body.access_token) }, { authorization: basic })
    expect(refused.status).toBe(400)
    expect(refused.body.error).toBe('invalid_request')
    expect(await op.userinfo(String(answer.body.access_token))).toBe(200)
  })
})
