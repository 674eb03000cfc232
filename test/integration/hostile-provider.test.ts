import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { events, jit } from '../support/cli.js'
import { testDeps, type TestDeps } from '../support/deps.js'
import { startFakeIdp, type FakeIdp } from '../support/fake-idp.js'

let idp: FakeIdp
let deps: TestDeps

beforeAll(async () => {
  idp = await startFakeIdp()
})
afterAll(async () => {
  await idp.close()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`--- stderr ---\n${deps.io.stderr()}`)
  expect(idp.unhandled).toEqual([])
  deps.cleanup()
  idp.tokenCalls.length = 0
})

async function setup(): Promise<TestDeps> {
  deps = testDeps()
  const init = await jit(deps, 'config', 'init', 'p', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--insecure-loopback', '--flow', 'device')
  expect(init.code, init.stderr).toBe(0)
  return deps
}

const accessToken = 'opaque-access-token-value-123456'

describe('a provider that misbehaves', () => {
  it.each([
    ['a forged ID token signature', async () => ({ id_token: await idp.idToken({}, idp.strangerKey) })],
    ['an ID token for another client', async () => ({ id_token: await idp.idToken({ aud: 'someone-else' }) })],
    ['an ID token from another issuer', async () => ({ id_token: await idp.idToken({ iss: 'https://evil.example' }) })],
    ['an expired ID token', async () => ({ id_token: await idp.idToken({ exp: Math.floor(Date.now() / 1000) - 3600 }) })],
  ])('%s: exit 1, one line, nothing stored', async (_name, extra) => {
    const d = await setup()
    const fields = await extra()
    idp.token = () => ({ body: { access_token: accessToken, token_type: 'Bearer', expires_in: 300, ...fields } })
    const res = await jit(d, 'login', '--json')
    expect(res.code).toBe(1)
    const errorLine = res.stderr.split('\n').find((l) => l.startsWith('jit: '))!
    expect(errorLine).toMatch(/^jit: invalid response from the provider during the token request/)
    expect(res.stderr).not.toContain(accessToken)
    expect(d.keychainStore.entries.size).toBe(0)
  })

  it('accepts a correctly signed ID token', async () => {
    const d = await setup()
    const idToken = await idp.idToken()
    idp.token = () => ({ body: { access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: idToken, scope: 'openid' } })
    const res = await jit(d, 'login', '--json')
    expect(res.code, res.stderr).toBe(0)
    expect(events(res.stderr).find((e) => e.event === 'logged_in')).toMatchObject({ capped_by: 'expires_in' })
    expect((await jit(d, 'token')).stdout).toBe(`${accessToken}\n`)
  })

  it.each([
    ['malformed JSON', { body: '{"access_token": ' }],
    ['no access_token', { body: { token_type: 'Bearer', expires_in: 300 } }],
    ['an HTML error page', { status: 502, body: '<html>bad gateway</html>', headers: { 'content-type': 'text/html' } }],
  ])('a token response with %s: exit 1, nothing stored', async (_name, reply) => {
    const d = await setup()
    idp.token = () => reply
    const res = await jit(d, 'login', '--json')
    expect(res.code).toBe(1)
    expect(res.stderr.split('\n').filter((l) => l.startsWith('jit: '))).toHaveLength(1)
    expect(d.keychainStore.entries.size).toBe(0)
  })

  it('a refusal from the token endpoint names the error and its description, exit 5', async () => {
    const d = await setup()
    idp.token = () => ({ status: 400, body: { error: 'invalid_scope', error_description: 'db:admin is not allowed\n\u001b[31mred' } })
    const res = await jit(d, 'login', '--json')
    expect(res.code).toBe(5)
    expect(res.stderr).toContain('jit: the provider refused the scope (invalid_scope: db:admin is not allowed')
    expect(res.stderr).not.toContain('\u001b[31m')
  })

  it('a verification URI that is not http(s) is refused and never opened', async () => {
    const d = await setup()
    d.env = { ...d.env, DISPLAY: ':0' }
    const saved = idp.device
    idp.device = () => ({
      body: { device_code: 'x', user_code: 'ABCD', verification_uri: 'javascript:alert(1)', expires_in: 600, interval: 0.01 },
    })
    try {
      const res = await jit(d, 'login', '--json')
      expect(res.code).toBe(1)
      expect(res.stderr).toContain('not http(s)')
      expect(d.opened).toEqual([])
      expect(idp.tokenCalls).toHaveLength(0)
    } finally {
      idp.device = saved
    }
  })

  it('a Google-style device response (verification_url instead of verification_uri) still works', async () => {
    const d = await setup()
    const saved = idp.device
    idp.device = () => ({
      body: { device_code: 'g', user_code: 'GGGG-HHHH', verification_url: 'https://www.google.com/device', expires_in: 1800, interval: 0.01 },
    })
    idp.token = () => ({ body: { access_token: accessToken, token_type: 'Bearer', expires_in: 300 } })
    try {
      const res = await jit(d, 'login', '--json')
      expect(res.code, res.stderr).toBe(0)
      expect(events(res.stderr).find((e) => e.event === 'device_authorization')).toMatchObject({ verification_uri: 'https://www.google.com/device', user_code: 'GGGG-HHHH' })
    } finally {
      idp.device = saved
    }
  })

  it('workload identity as a client assertion (RFC 7523, Entra ID style): the CI token authenticates the client', async () => {
    deps = testDeps({ env: { CI: 'true', CI_OIDC: 'ci.oidc.token-from-the-ci-system' } })
    const init = await jit(deps, 'config', 'init', 'fed', '--issuer', idp.issuer, '--client-id', 'app-id', '--insecure-loopback', '--flow', 'token-exchange', '--scope', 'api://app/.default')
    expect(init.code, init.stderr).toBe(0)
    for (const [f, v] of [['exchange', 'client-assertion'], ['subject-token', 'env:CI_OIDC']]) expect((await jit(deps, 'config', 'set', 'fed', f!, v!)).code).toBe(0)
    idp.token = () => ({ body: { access_token: accessToken, token_type: 'Bearer', expires_in: 300, scope: 'api://app/.default' } })
    const res = await jit(deps, 'token', '--store', 'none')
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toBe(`${accessToken}\n`)
    const sent = idp.tokenCalls.at(-1)!
    expect(sent.get('grant_type')).toBe('client_credentials')
    expect(sent.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
    expect(sent.get('client_assertion')).toBe('ci.oidc.token-from-the-ci-system')
    expect(sent.get('client_id')).toBe('app-id')
    expect(sent.has('subject_token')).toBe(false)
  })

  it('503 with Retry-After waits as told, then succeeds', async () => {
    const d = await setup()
    const waits: number[] = []
    d.sleep = async (ms) => {
      waits.push(ms)
    }
    idp.token = (call) =>
      call === 1
        ? { status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '2' } }
        : { body: { access_token: accessToken, token_type: 'Bearer', expires_in: 300 } }
    const res = await jit(d, 'login', '--json')
    expect(res.code, res.stderr).toBe(0)
    expect(waits).toEqual([10, 2000])
  })

  it('opens the browser on the complete verification URI when there is a display, not with --no-browser', async () => {
    const d = await setup()
    d.env = { ...d.env, DISPLAY: ':0' }
    idp.token = () => ({ body: { access_token: accessToken, token_type: 'Bearer', expires_in: 300 } })
    const res = await jit(d, 'login', '--json')
    expect(res.code, res.stderr).toBe(0)
    expect(d.opened.map(String)).toEqual([`${idp.issuer}/device?user_code=ABCD-EFGH`])
    expect(events(res.stderr).map((e) => e.event)).toContain('browser_opened')
    const again = await jit(d, 'login', '--json', '--no-browser')
    expect(again.code).toBe(0)
    expect(d.opened).toHaveLength(1)
    const ssh = await jit({ ...d, env: { ...d.env, SSH_CONNECTION: '10.0.0.1 1 10.0.0.2 22' } } as TestDeps, 'login', '--json')
    expect(ssh.code).toBe(0)
    expect(d.opened).toHaveLength(1)
  })
})
