import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { jit, waitForEvent, events } from '../support/cli.js'
import { testDeps, type TestDeps } from '../support/deps.js'

let idp: LocalProvider
let deps: TestDeps

beforeAll(async () => {
  idp = await startLocalProvider({ deviceInterval: 0.05 })
})
afterAll(async () => {
  await idp.close()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') {
    console.error(`--- stdout ---\n${deps.io.stdout()}\n--- stderr ---\n${deps.io.stderr()}`)
  }
  deps.cleanup()
})

async function setup(issuer = idp.issuer, extra: string[] = []): Promise<TestDeps> {
  deps = testDeps()
  const init = await jit(deps, 'config', 'init', 'demo', '--issuer', issuer, '--client-id', 'jit-cli', '--scope', 'db:read', '--insecure-loopback', '--ttl-param', 'ttl', ...extra)
  expect(init.code, init.stderr).toBe(0)
  return deps
}

/** Runs `jit login --json ...` and plays the person who approves (or denies) the device code. */
async function loginAs(d: TestDeps, args: string[], opts: { deny?: boolean; approve?: boolean } = {}) {
  const run = jit(d, 'login', '--json', ...args)
  if (opts.approve !== false) {
    const event = await waitForEvent(() => d.io.stderr(), 'device_authorization')
    await idp.approveDevice(String(event.verification_uri_complete), { deny: opts.deny ?? false })
  }
  return run
}

describe('jit login (device flow) against a real oidc-provider', () => {
  it('logs in, serves the token until its deadline, then refuses and deletes it', async () => {
    // Given a profile for the local provider
    const d = await setup()

    // When a person approves the device code
    const login = await loginAs(d, ['--scope', 'db:read', '--ttl', '2m'])

    // Then the login succeeds, prints nothing on stdout and reports the step events
    expect(login.code, login.stderr).toBe(0)
    expect(login.stdout).toBe('')
    const evs = events(login.stderr)
    const device = evs.find((e) => e.event === 'device_authorization')!
    expect(device.user_code).toEqual(expect.any(String))
    expect(String(device.verification_uri)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/device$/)
    expect(device.expires_in).toBe(600)
    const loggedIn = evs.find((e) => e.event === 'logged_in')!
    expect(loggedIn).toMatchObject({ profile: 'demo', capped_by: 'ttl', stored: true })
    // The JWT exp (whole seconds) may trim the sub-second part of the TTL, never more
    const deadline = Date.parse(String(loggedIn.deadline))
    expect(deadline).toBeLessThanOrEqual(d.clock.now() + 120_000)
    expect(deadline).toBeGreaterThan(d.clock.now() + 119_000)

    // And jit token prints exactly the access token: a JWT for the db resource, signed by the provider
    const token = await jit(d, 'token')
    expect(token.code, token.stderr).toBe(0)
    expect(token.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/)
    const accessToken = token.stdout.trim()
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`))
    const { payload } = await jwtVerify(accessToken, jwks, { issuer: idp.issuer, audience: 'urn:jit:db' })
    expect(String(payload.scope).split(' ')).toContain('db:read')
    expect(payload.exp! - payload.iat!).toBe(120) // the TTL went to the provider too

    // And status shows what capped the deadline
    const status = await jit(d, 'status', '--json')
    expect(status.code).toBe(0)
    const s = JSON.parse(status.stdout) as { credentials: Array<Record<string, unknown>> }
    expect(s.credentials).toHaveLength(1)
    expect(s.credentials[0]).toMatchObject({ profile: 'demo', capped_by: 'ttl', store: 'keychain', resource: [] })
    expect(s.credentials[0]!.expires_in).toBeGreaterThanOrEqual(119)
    expect(String(s.credentials[0]!.scope).split(' ')).toContain('db:read')

    // And the token is nowhere in the config folder, nor on stderr
    for (const name of readdirSync(d.dir)) expect(readFileSync(join(d.dir, name), 'utf8')).not.toContain(accessToken)
    expect(d.io.stderr()).not.toContain(accessToken)

    // When the clock passes the deadline minus the 30 s leeway, jit token refuses with exit 4
    d.clock.set(deadline - 29_500)
    const late = await jit(d, 'token')
    expect(late.code).toBe(4)
    expect(late.stdout).toBe('')
    expect(late.stderr).toMatch(/^jit: the credential of profile "demo" expires in 29s, inside the safety margin\nrun: jit login --profile demo\n$/)
    expect(d.keychainStore.entries.size).toBe(1)

    // And at the deadline it is deleted from the keychain and the state file
    d.clock.set(deadline)
    const expired = await jit(d, 'token')
    expect(expired.code).toBe(4)
    expect(expired.stderr).toContain('expired')
    expect(expired.stderr).toContain('run: jit login --profile demo')
    expect(d.keychainStore.entries.size).toBe(0)
    const state = JSON.parse(readFileSync(join(d.dir, 'state.json'), 'utf8')) as { credentials: object }
    expect(state.credentials).toEqual({})
  })

  it('a token for another scope is a miss with a hint naming that scope', async () => {
    const d = await setup()
    expect((await loginAs(d, ['--ttl', '5m'])).code).toBe(0)
    const other = await jit(d, 'token', '--scope', 'db:write')
    expect(other.code).toBe(4)
    expect(other.stderr).toContain('run: jit login --profile demo --scope db:write')
    expect((await jit(d, 'token', '--min-ttl', '10m')).code).toBe(4)
    expect((await jit(d, 'token', '--min-ttl', '1m')).code).toBe(0)
  })

  it('access_denied ends the login with exit 5 and stores nothing', async () => {
    const d = await setup()
    const res = await loginAs(d, [], { deny: true })
    expect(res.code).toBe(5)
    expect(res.stderr).toMatch(/jit: the login was refused \(access_denied/)
    expect(d.keychainStore.entries.size).toBe(0)
  })

  it('slow_down adds 5 seconds to the polling interval (RFC 8628 §3.5)', async () => {
    const d = await setup()
    const waits: number[] = []
    d.sleep = async (ms) => {
      waits.push(ms)
      await new Promise((r) => setTimeout(r, 5))
    }
    idp.slowDownNext(1)
    const res = await loginAs(d, [])
    expect(res.code, res.stderr).toBe(0)
    expect(waits[0]).toBe(50)
    expect(waits[1]).toBe(5050)
    expect(waits.slice(2).every((w) => w === 5050)).toBe(true)
  })

  it('rejects --ttl garbage, zero and values above max-ttl with exit 2 before any network call', async () => {
    const d = await setup(idp.issuer, ['--max-ttl', '1h'])
    idp.resetCounters()
    for (const ttl of ['abc', '0s', '-1h', '2h']) {
      const res = await jit(d, 'login', '--json', '--ttl', ttl)
      expect(res.code, `--ttl ${ttl}`).toBe(2)
      expect(res.stderr.split('\n')[0]).toMatch(/^jit: /)
    }
    expect(idp.tokenRequests).toBe(0)
  })
})

describe('a device code that expires before approval', () => {
  let shortIdp: LocalProvider
  beforeAll(async () => {
    shortIdp = await startLocalProvider({ deviceInterval: 0.2, deviceCodeTtl: 1 })
  })
  afterAll(async () => {
    await shortIdp.close()
  })

  it('ends with expired_token → exit 5', async () => {
    const d = await setup(shortIdp.issuer)
    const res = await jit(d, 'login', '--json')
    expect(res.code).toBe(5)
    expect(res.stderr).toContain('expired')
    expect(d.keychainStore.entries.size).toBe(0)
  })
})

describe('a token response without expires_in', () => {
  let noExp: LocalProvider
  beforeAll(async () => {
    noExp = await startLocalProvider({ deviceInterval: 0.05, omitExpiresIn: true, accessTokenTtl: 600 })
  })
  afterAll(async () => {
    await noExp.close()
  })

  it('takes the deadline from the JWT exp when it is shorter than the TTL', async () => {
    const d = await setup(noExp.issuer)
    const run = jit(d, 'login', '--json', '--ttl', '2h')
    const event = await waitForEvent(() => d.io.stderr(), 'device_authorization')
    await noExp.approveDevice(String(event.verification_uri_complete))
    const res = await run
    expect(res.code, res.stderr).toBe(0)
    const loggedIn = events(res.stderr).find((e) => e.event === 'logged_in')!
    expect(loggedIn.capped_by).toBe('exp')
    const deadline = Date.parse(String(loggedIn.deadline))
    expect(Math.abs(deadline - (d.clock.now() + 600_000))).toBeLessThan(5_000)
  })

  it('takes the deadline from the TTL for an opaque token', async () => {
    const d = await setup(noExp.issuer)
    const run = jit(d, 'login', '--json', '--scope', 'openid', '--ttl', '5m')
    const event = await waitForEvent(() => d.io.stderr(), 'device_authorization')
    await noExp.approveDevice(String(event.verification_uri_complete))
    const res = await run
    expect(res.code, res.stderr).toBe(0)
    const loggedIn = events(res.stderr).find((e) => e.event === 'logged_in')!
    expect(loggedIn.capped_by).toBe('ttl')
    expect(Date.parse(String(loggedIn.deadline))).toBe(d.clock.now() + 300_000)
  })
})

describe('jit config init checks discovery', () => {
  let server: Server
  let base: string
  const routes: Record<string, (res: ServerResponse) => void> = {}
  beforeAll(async () => {
    server = createServer((req, res) => {
      const route = routes[req.url ?? '']
      if (route) route(res)
      else {
        res.statusCode = 404
        res.end('not found')
      }
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    routes['/other/.well-known/openid-configuration'] = (res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ issuer: `${base}/evil`, authorization_endpoint: `${base}/auth`, token_endpoint: `${base}/token`, jwks_uri: `${base}/jwks` }))
    }
    routes['/garbage/.well-known/openid-configuration'] = (res) => {
      res.setHeader('content-type', 'application/json')
      res.end('{"issuer": ')
    }
  })
  afterAll(() => {
    server.close()
  })

  it.each([
    ['names another issuer', 'other', /names another issuer/],
    ['is missing', 'missing', /no valid discovery document/],
    ['is malformed', 'garbage', /no valid discovery document/],
  ])('refuses an issuer whose discovery document %s, and saves nothing', async (_name, path, message) => {
    deps = testDeps()
    const res = await jit(deps, 'config', 'init', 'x', '--issuer', `${base}/${path}`, '--client-id', 'c', '--insecure-loopback')
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(message)
    expect(res.stderr.split('\n')[0]).toMatch(/^jit: /)
    expect((await jit(deps, 'config', 'list', '--json')).stdout).toBe('[]\n')
  })

  it('refuses plain http without --insecure-loopback (exit 2)', async () => {
    deps = testDeps()
    const res = await jit(deps, 'config', 'init', 'x', '--issuer', idp.issuer, '--client-id', 'jit-cli')
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('--insecure-loopback')
  })
})

describe('scopes and resources', () => {
  it('--scope repeated or space-separated is the same request; --resource sets the JWT audience', async () => {
    const d = await setup()
    const run = jit(d, 'login', '--json', '--scope', 'db:read', '--scope', 'db:write', '--resource', 'urn:jit:db')
    const event = await waitForEvent(() => d.io.stderr(), 'device_authorization')
    await idp.approveDevice(String(event.verification_uri_complete))
    const res = await run
    expect(res.code, res.stderr).toBe(0)
    const token = await jit(d, 'token', '--scope', 'db:write db:read', '--resource', 'urn:jit:db')
    expect(token.code, token.stderr).toBe(0)
    const claims = JSON.parse(Buffer.from(token.stdout.split('.')[1]!, 'base64url').toString()) as { aud: string; scope: string }
    expect(claims.aud).toBe('urn:jit:db')
    expect(claims.scope.split(' ').sort()).toEqual(['db:read', 'db:write'])
    // Without the resource it is another request, so another (missing) credential
    expect((await jit(d, 'token', '--scope', 'db:write db:read')).code).toBe(4)
  })
})
