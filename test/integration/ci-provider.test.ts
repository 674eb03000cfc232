/**
 * The provider side of the machine flows (issue 5), proven with plain fetch and no jit code: client credentials with a
 * secret (post and basic) and with `private_key_jwt`, and RFC 8693 token exchange of a CI system's OIDC token.
 */
import { randomUUID } from 'node:crypto'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createLocalJWKSet, decodeJwt, importPKCS8, jwtVerify, SignJWT, type JWTPayload } from 'jose'
import {
  ACCESS_TOKEN_TYPE,
  CI_JWT_CLIENT_ID,
  DB_RESOURCE,
  TOKEN_EXCHANGE_GRANT,
  startLocalProvider,
  type LocalProvider,
} from '../../scripts/local-provider.mjs'
import { CI_WORKLOAD, GITHUB_SUB, GITLAB_SUB, startCiIssuer, type CiIssuer, type MintClaims } from '../support/ci-issuer.js'

const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** The audience the provider expects in CI subject tokens. */
const CI_AUDIENCE = 'urn:jit:provider'

type Body = Record<string, unknown>

async function post(
  op: LocalProvider,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number, body: Body }> {
  const res = await fetch(`${op.issuer}/token`, { method: 'POST', headers, body: new URLSearchParams(form) })
  return { status: res.status, body: (await res.json()) as Body }
}

const basicAuth = (op: LocalProvider): Record<string, string> =>
  ({ authorization: `Basic ${Buffer.from(`${op.ciClientId}:${op.ciClientSecret}`).toString('base64')}` })

/** Verifies an access token of `op` as the database would. */
async function verifyAccessToken(op: LocalProvider, token: unknown): Promise<JWTPayload> {
  const { payload, protectedHeader } = await jwtVerify(String(token), createLocalJWKSet(op.publicJwks), {
    issuer: op.issuer,
    audience: DB_RESOURCE,
    typ: 'at+jwt',
  })
  expect(protectedHeader.alg).toBe('RS256')
  return payload
}

/** A `private_key_jwt` client assertion (RFC 7523) for `jit-ci-jwt`. */
async function clientAssertion(op: LocalProvider, overrides: { iss?: string, aud?: string } = {}): Promise<string> {
  const key = await importPKCS8(op.ciPrivateKeyPem, 'RS256')
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: op.ciKeyId })
    .setIssuer(overrides.iss ?? op.ciJwtClientId)
    .setSubject(op.ciJwtClientId)
    .setAudience(overrides.aud ?? `${op.issuer}/token`)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(key)
}

/** Fetches a job token from the CI issuer's GitHub-style endpoint, exactly as a client given `githubEnv()` would. */
async function githubIdToken(ci: CiIssuer, audience: string): Promise<string> {
  const env = ci.githubEnv()
  const res = await fetch(`${env.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=${encodeURIComponent(audience)}`, {
    headers: { authorization: `bearer ${env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}` },
  })
  expect(res.status).toBe(200)
  const { value } = (await res.json()) as { value: string }
  return value
}

describe('CI issuer (test double of GitHub Actions / GitLab CI)', () => {
  let ci: CiIssuer

  beforeAll(async () => {
    ci = await startCiIssuer()
  })

  afterAll(async () => {
    await ci?.close()
  })

  it('publishes discovery and its JWKS, and its tokens verify against them', async () => {
    const discovery = (await (await fetch(`${ci.issuer}/.well-known/openid-configuration`)).json()) as Body
    expect(discovery.issuer).toBe(ci.issuer)
    const jwks = (await (await fetch(String(discovery.jwks_uri))).json()) as CiIssuer['jwks']
    expect(jwks).toEqual(ci.jwks)
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/)

    const token = await ci.mint({ aud: 'x' })
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: ci.issuer, audience: 'x' })
    expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: ci.jwks.keys[0].kid })
    expect(payload).toMatchObject({ repository: CI_WORKLOAD, sub: GITHUB_SUB })
    expect(payload.exp! - payload.iat!).toBeGreaterThanOrEqual(300)
  })

  it('serves ID tokens for the requested audience to the right bearer only, and records every request', async () => {
    const env = ci.githubEnv()
    expect(new URL(env.ACTIONS_ID_TOKEN_REQUEST_URL).searchParams.get('api-version')).toBe('2.0')
    const before = ci.requests.length

    const value = await githubIdToken(ci, 'urn:jit:provider')
    expect(decodeJwt(value)).toMatchObject({ iss: ci.issuer, aud: 'urn:jit:provider', repository: CI_WORKLOAD, sub: GITHUB_SUB })

    const wrong = await fetch(`${env.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=a`, { headers: { authorization: 'bearer nope' } })
    expect(wrong.status).toBe(401)
    const missing = await fetch(env.ACTIONS_ID_TOKEN_REQUEST_URL)
    expect(missing.status).toBe(401)

    expect(ci.requests.slice(before)).toEqual([
      { audience: 'urn:jit:provider', authorized: true },
      { audience: 'a', authorized: false },
      { audience: null, authorized: false },
    ])
  })

  it('mints GitLab-style tokens with kind: gitlab', async () => {
    const gitlab = await startCiIssuer({ kind: 'gitlab' })
    try {
      const env = await gitlab.gitlabEnv('JIT_ID_TOKEN', 'urn:jit:provider')
      const payload = decodeJwt(env.JIT_ID_TOKEN)
      expect(payload).toMatchObject({ iss: gitlab.issuer, aud: 'urn:jit:provider', project_path: CI_WORKLOAD, sub: GITLAB_SUB })
      expect(payload).not.toHaveProperty('repository')
    } finally {
      await gitlab.close()
    }
  })
})

describe('local provider: client credentials', () => {
  let op: LocalProvider

  beforeAll(async () => {
    op = await startLocalProvider({ accessTokenTtl: 600 })
  })

  afterAll(async () => {
    await op?.close()
  })

  it('issues a JWT for urn:jit:db with the secret in the form (client_secret_post), ttl honoured', async () => {
    const { status, body } = await post(op, {
      grant_type: 'client_credentials',
      client_id: op.ciClientId,
      client_secret: op.ciClientSecret,
      resource: DB_RESOURCE,
      scope: 'db:read',
      ttl: '42',
    })
    expect(status).toBe(200)
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 42, scope: 'db:read' })
    const payload = await verifyAccessToken(op, body.access_token)
    expect(payload).toMatchObject({ aud: DB_RESOURCE, scope: 'db:read', client_id: op.ciClientId, sub: op.ciClientId })
    expect(payload.exp! - payload.iat!).toBe(42)
  })

  it('issues one with HTTP Basic (client_secret_basic) and picks urn:jit:db for db:* scopes without a resource', async () => {
    const { status, body } = await post(op, { grant_type: 'client_credentials', scope: 'db:read db:write' }, basicAuth(op))
    expect(status).toBe(200)
    expect(body.expires_in).toBe(600)
    const payload = await verifyAccessToken(op, body.access_token)
    expect(payload.scope).toBe('db:read db:write')
  })

  it('caps ttl at accessTokenTtl and rejects a wrong secret', async () => {
    const capped = await post(op, { grant_type: 'client_credentials', scope: 'db:read', ttl: '99999' }, basicAuth(op))
    expect(capped.body.expires_in).toBe(600)

    const wrong = await post(op, {
      grant_type: 'client_credentials',
      client_id: op.ciClientId,
      client_secret: 'wrong',
      scope: 'db:read',
    })
    expect(wrong.status).toBe(401)
    expect(wrong.body.error).toBe('invalid_client')
  })

  it('answers invalid_target for an unknown resource', async () => {
    const { status, body } = await post(op, { grant_type: 'client_credentials', resource: 'urn:other', scope: 'db:read' }, basicAuth(op))
    expect(status).toBe(400)
    expect(body.error).toBe('invalid_target')
  })

  it('authenticates jit-ci-jwt with private_key_jwt (RFC 7523)', async () => {
    expect(op.ciJwtClientId).toBe(CI_JWT_CLIENT_ID)
    expect(op.ciPrivateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
    const { status, body } = await post(op, {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(op),
      scope: 'db:read',
      ttl: '30',
    })
    expect(status).toBe(200)
    expect(body).toMatchObject({ expires_in: 30, scope: 'db:read' })
    const payload = await verifyAccessToken(op, body.access_token)
    expect(payload).toMatchObject({ client_id: CI_JWT_CLIENT_ID, scope: 'db:read' })

    // The issuer is an accepted assertion audience too.
    const issuerAud = await post(op, {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(op, { aud: op.issuer }),
      scope: 'db:read',
    })
    expect(issuerAud.status).toBe(200)
  })

  it('refuses a replayed, mis-addressed or secret-based authentication of jit-ci-jwt', async () => {
    const assertion = await clientAssertion(op)
    const form = { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion, scope: 'db:read' }
    expect((await post(op, form)).status).toBe(200)
    const replay = await post(op, form)
    expect(replay.status).toBe(401)
    expect(replay.body.error).toBe('invalid_client')

    const wrongAud = await post(op, { ...form, client_assertion: await clientAssertion(op, { aud: 'https://elsewhere' }) })
    expect(wrongAud.body.error).toBe('invalid_client')

    const secret = await post(op, { grant_type: 'client_credentials', client_id: CI_JWT_CLIENT_ID, client_secret: 'x', scope: 'db:read' })
    expect(secret.body.error).toBe('invalid_client')
  })

  it('lists the token-exchange grant and private_key_jwt in discovery', async () => {
    const discovery = (await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json()) as Body
    expect(discovery.grant_types_supported).toEqual(expect.arrayContaining(['client_credentials', TOKEN_EXCHANGE_GRANT]))
    expect(discovery.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt']),
    )
  })
})

describe('local provider: token exchange of a CI token (RFC 8693)', () => {
  let op: LocalProvider
  let ci: CiIssuer

  beforeAll(async () => {
    ci = await startCiIssuer()
    op = await startLocalProvider({
      accessTokenTtl: 900,
      trustedCiIssuers: [ci.trustEntry(CI_AUDIENCE, { [CI_WORKLOAD]: ['db:read'], 'acme/admin': ['db:read', 'db:write'] })],
    })
  })

  afterAll(async () => {
    await op?.close()
    await ci?.close()
  })

  /** A token signed by another CI issuer's key (its own `iss` unless overridden). */
  async function fromOtherIssuer(claims: MintClaims): Promise<string> {
    const other = await startCiIssuer()
    try {
      return await other.mint(claims)
    } finally {
      await other.close()
    }
  }

  const exchange = (subjectToken: string, extra: Record<string, string> = {}, headers = basicAuth(op)) =>
    post(op, {
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: subjectToken,
      subject_token_type: ID_TOKEN_TYPE,
      ...extra,
    }, headers)

  it('trades a GitHub-style job token for a narrowed db token, ttl honoured', async () => {
    expect(op.trustedCiIssuers).toEqual([ci.issuer])
    const subjectToken = await githubIdToken(ci, CI_AUDIENCE)
    const { status, body } = await exchange(subjectToken, { scope: 'db:read db:write', ttl: '120' })
    expect(status).toBe(200)
    expect(body).toMatchObject({
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: 120,
      scope: 'db:read',
    })
    const payload = await verifyAccessToken(op, body.access_token)
    expect(payload).toMatchObject({
      aud: DB_RESOURCE,
      sub: GITHUB_SUB,
      scope: 'db:read',
      client_id: op.ciClientId,
      act: { sub: op.ciClientId },
      ci_iss: ci.issuer,
      ci_workload: CI_WORKLOAD,
    })
    expect(payload.exp! - payload.iat!).toBe(120)
  })

  it('grants everything allowed by default, and the requested subset when narrower', async () => {
    const admin = await ci.mint({ aud: CI_AUDIENCE, repository: 'acme/admin' })
    const all = await exchange(admin)
    expect(all.body).toMatchObject({ scope: 'db:read db:write', expires_in: 900 })
    const some = await exchange(admin, { scope: 'db:write', resource: DB_RESOURCE, audience: DB_RESOURCE })
    expect(some.body.scope).toBe('db:write')
  })

  it('accepts subject_token_type jwt, GitLab project_path, private_key_jwt clients and trustCiIssuer after start', async () => {
    const gitlab = await startCiIssuer({ kind: 'gitlab' })
    try {
      const token = await gitlab.mint({ aud: CI_AUDIENCE })
      const untrusted = await exchange(token, { subject_token_type: JWT_TOKEN_TYPE })
      expect(untrusted.body.error).toBe('invalid_grant')

      op.trustCiIssuer(gitlab.trustEntry(CI_AUDIENCE, { [CI_WORKLOAD]: ['db:write'] }))
      const { status, body } = await post(op, {
        grant_type: TOKEN_EXCHANGE_GRANT,
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: await clientAssertion(op),
        subject_token: token,
        subject_token_type: JWT_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
      })
      expect(status).toBe(200)
      const payload = await verifyAccessToken(op, body.access_token)
      expect(payload).toMatchObject({ sub: GITLAB_SUB, scope: 'db:write', client_id: CI_JWT_CLIENT_ID, ci_workload: CI_WORKLOAD })
    } finally {
      await gitlab.close()
    }
  })

  it('answers invalid_scope when nothing requested is allowed', async () => {
    const { status, body } = await exchange(await githubIdToken(ci, CI_AUDIENCE), { scope: 'db:write' })
    expect(status).toBe(400)
    expect(body.error).toBe('invalid_scope')
    expect(body.error_description).toMatch(/db:write/)
  })

  it.each([
    ['an untrusted issuer', () => fromOtherIssuer({ aud: CI_AUDIENCE }), /issuer .* is not trusted/],
    ['an expired token', () => ci.mint({ aud: CI_AUDIENCE, expiresIn: -60 }), /expired/],
    ['another audience', () => ci.mint({ aud: 'https://github.com/acme' }), /aud/],
    ['a forged signature', () => fromOtherIssuer({ aud: CI_AUDIENCE, iss: ci.issuer }), /signature|key/i],
    ['a repository without a rule', () => ci.mint({ aud: CI_AUDIENCE, repository: 'mallory/fork' }), /mallory\/fork is not allowed/],
    ['no workload claim', () => ci.mint({ aud: CI_AUDIENCE, repository: null }), /no workload/],
    ['not a JWT', async () => 'not-a-jwt', /not a JWT/],
  ])('answers invalid_grant with a description for %s', async (_name, subject, description) => {
    const { status, body } = await exchange(await subject(), { scope: 'db:read' })
    expect(status).toBe(400)
    expect(body.error).toBe('invalid_grant')
    expect(String(body.error_description)).toMatch(description)
  })

  it('checks the request: client authentication, token types, target', async () => {
    const token = await ci.mint({ aud: CI_AUDIENCE })
    const noClient = await exchange(token, {}, {})
    expect(noClient.body.error).toBe('invalid_request')
    const publicClient = await exchange(token, { client_id: op.clientId }, {})
    // oidc-provider 8 says invalid_request here, where RFC 6749 would say unauthorized_client.
    expect(publicClient.body).toEqual({ error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' })
    expect((await exchange(token, { subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' })).body.error)
      .toBe('invalid_request')
    expect((await exchange(token, { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' })).body.error)
      .toBe('invalid_request')
    expect((await exchange(token, { audience: 'urn:other' })).body.error).toBe('invalid_target')
    expect((await post(op, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token_type: ID_TOKEN_TYPE }, basicAuth(op))).body.error)
      .toBe('invalid_request')
  })

  it('counts token exchanges and client credentials in tokenRequests', async () => {
    op.resetCounters()
    await exchange(await githubIdToken(ci, CI_AUDIENCE))
    await exchange('not-a-jwt')
    await post(op, { grant_type: 'client_credentials', scope: 'db:read' }, basicAuth(op))
    expect(op.tokenRequests).toBe(3)
    expect(op.tokenRequestsByGrant).toEqual({ [TOKEN_EXCHANGE_GRANT]: 2, client_credentials: 1 })
  })
})
