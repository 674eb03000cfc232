import { createHash, randomBytes } from 'node:crypto'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose'
import { DB_RESOURCE, startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'

interface DeviceAuthorization {
  device_code: string
  user_code: string
  verification_uri: string
  verification_uri_complete: string
  expires_in: number
  interval?: number
}

type TokenResponse = Record<string, unknown>

async function postForm(url: string, form: Record<string, string>): Promise<{ status: number, body: TokenResponse }> {
  const res = await fetch(url, { method: 'POST', body: new URLSearchParams(form) })
  return { status: res.status, body: (await res.json()) as TokenResponse }
}

async function startDevice(op: LocalProvider, scope = 'openid db:read'): Promise<DeviceAuthorization> {
  const { status, body } = await postForm(`${op.issuer}/device/auth`, { client_id: op.clientId, scope })
  expect(status).toBe(200)
  return body as unknown as DeviceAuthorization
}

function pollDevice(op: LocalProvider, deviceCode: string, extra: Record<string, string> = {}) {
  return postForm(`${op.issuer}/token`, {
    client_id: op.clientId,
    grant_type: DEVICE_GRANT,
    device_code: deviceCode,
    ...extra,
  })
}

describe('local OpenID provider', () => {
  let op: LocalProvider

  beforeAll(async () => {
    op = await startLocalProvider({ deviceInterval: 0.05 })
  })

  afterAll(async () => {
    await op?.close()
  })

  it('serves discovery naming the issuer and the device endpoint', async () => {
    expect(op.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const res = await fetch(`${op.issuer}/.well-known/openid-configuration`)
    expect(res.status).toBe(200)
    const discovery = (await res.json()) as Record<string, unknown>
    expect(discovery.issuer).toBe(op.issuer)
    expect(discovery.device_authorization_endpoint).toBe(`${op.issuer}/device/auth`)
    expect(discovery.token_endpoint).toBe(`${op.issuer}/token`)
    expect(discovery.scopes_supported).toEqual(expect.arrayContaining(['openid', 'db:read', 'db:write']))
  })

  it('completes a device flow with a short JWT access token for urn:jit:db', async () => {
    const device = await startDevice(op)
    expect(device.interval).toBe(0.05)
    expect(device.verification_uri_complete).toContain(device.user_code)

    const pending = await pollDevice(op, device.device_code)
    expect(pending.body.error).toBe('authorization_pending')

    await op.approveDevice(device.verification_uri_complete)

    const { status, body } = await pollDevice(op, device.device_code, { ttl: '120' })
    expect(status).toBe(200)
    expect(body.expires_in).toBe(120)
    expect(typeof body.id_token).toBe('string')

    const { payload, protectedHeader } = await jwtVerify(String(body.access_token), createLocalJWKSet(op.publicJwks), {
      issuer: op.issuer,
      audience: DB_RESOURCE,
    })
    expect(protectedHeader.alg).toBe('RS256')
    expect(payload.aud).toBe('urn:jit:db')
    expect(String(payload.scope).split(' ')).toContain('db:read')
    expect(payload.sub).toBe('alice')
    expect(payload.client_id).toBe('jit-cli')
    expect(Number(payload.exp) - Number(payload.iat)).toBe(120)

    const idToken = decodeJwt(String(body.id_token))
    expect(idToken.aud).toBe('jit-cli')
    expect(idToken.sub).toBe('alice')
  })

  it('ends polling with access_denied when the user aborts', async () => {
    const device = await startDevice(op)
    await op.approveDevice(device.verification_uri_complete, { deny: true })
    const { status, body } = await pollDevice(op, device.device_code)
    expect(status).toBe(400)
    expect(body.error).toBe('access_denied')
  })

  it('runs the authorization code flow with PKCE through authorize()', async () => {
    const verifier = randomBytes(32).toString('base64url')
    const challenge = createHash('sha256').update(verifier).digest('base64url')
    const redirectUri = 'http://127.0.0.1:49152/callback'
    const url = new URL(`${op.issuer}/auth`)
    url.search = new URLSearchParams({
      client_id: op.clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid profile db:read',
      state: 'state-1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString()

    const location = new URL(await op.authorize(url.href, { accountId: 'bob' }))
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri)
    expect(location.searchParams.get('state')).toBe('state-1')
    expect(location.searchParams.get('iss')).toBe(op.issuer)
    const code = location.searchParams.get('code')
    expect(code).toBeTruthy()

    const { status, body } = await postForm(`${op.issuer}/token`, {
      client_id: op.clientId,
      grant_type: 'authorization_code',
      code: String(code),
      redirect_uri: redirectUri,
      code_verifier: verifier,
    })
    expect(status).toBe(200)
    expect(body.expires_in).toBe(3600)
    const accessToken = decodeJwt(String(body.access_token))
    expect(accessToken.aud).toBe(DB_RESOURCE)
    expect(accessToken.sub).toBe('bob')
    expect(decodeJwt(String(body.id_token)).preferred_username).toBe('bob')

    url.searchParams.set('state', 'state-2')
    const denied = new URL(await op.authorize(url.href, { deny: true }))
    expect(denied.searchParams.get('error')).toBe('access_denied')
    expect(denied.searchParams.get('state')).toBe('state-2')
    expect(denied.searchParams.has('code')).toBe(false)
  })

  it('counts token-endpoint requests by grant', async () => {
    op.resetCounters()
    expect(op.tokenRequests).toBe(0)
    const device = await startDevice(op)
    await pollDevice(op, device.device_code)
    await pollDevice(op, device.device_code)
    await op.approveDevice(device.verification_uri_complete)
    await pollDevice(op, device.device_code)
    const basic = Buffer.from(`${op.ciClientId}:${op.ciClientSecret}`).toString('base64')
    const ci = await fetch(`${op.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'db:read', ttl: '45' }),
    })
    expect(ci.status).toBe(200)
    const ciBody = (await ci.json()) as TokenResponse
    expect(ciBody.expires_in).toBe(45)
    expect(decodeJwt(String(ciBody.access_token)).aud).toBe(DB_RESOURCE)

    expect(op.tokenRequests).toBe(4)
    expect(op.tokenRequestsByGrant).toEqual({ [DEVICE_GRANT]: 3, client_credentials: 1 })
    op.resetCounters()
    expect(op.tokenRequests).toBe(0)
    expect(op.tokenRequestsByGrant).toEqual({})
  })

  it('answers slow_down to the next device poll after slowDownNext()', async () => {
    const device = await startDevice(op)
    op.slowDownNext(1)
    expect((await pollDevice(op, device.device_code)).body.error).toBe('slow_down')
    expect((await pollDevice(op, device.device_code)).body.error).toBe('authorization_pending')
  })
})

describe('local OpenID provider options', () => {
  it('expires device codes after deviceCodeTtl', async () => {
    const op = await startLocalProvider({ deviceInterval: 0.05, deviceCodeTtl: 1 })
    try {
      const device = await startDevice(op)
      expect(device.expires_in).toBe(1)
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const { status, body } = await pollDevice(op, device.device_code)
      expect(status).toBe(400)
      expect(body.error).toBe('expired_token')
    } finally {
      await op.close()
    }
  })

  it('omits expires_in when omitExpiresIn is set', async () => {
    const op = await startLocalProvider({ deviceInterval: 0.05, omitExpiresIn: true, accessTokenTtl: 300 })
    try {
      const device = await startDevice(op)
      await op.approveDevice(device.verification_uri_complete)
      const { status, body } = await pollDevice(op, device.device_code, { ttl: '9999' })
      expect(status).toBe(200)
      expect(body).not.toHaveProperty('expires_in')
      const payload = decodeJwt(String(body.access_token))
      expect(Number(payload.exp) - Number(payload.iat)).toBe(300)
    } finally {
      await op.close()
    }
  })
})
