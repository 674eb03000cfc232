import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { memoryAuditLog } from '../../src/audit/audit-log.js'
import { events, jit, waitForEvent } from '../support/cli.js'
import { testDeps, type TestDeps } from '../support/deps.js'

let idp: LocalProvider
let deps: TestDeps
let audit: ReturnType<typeof memoryAuditLog>

beforeAll(async () => {
  // Access tokens live at most 2 minutes, so a 10-minute login needs refreshes
  idp = await startLocalProvider({ deviceInterval: 0.05, accessTokenTtl: 120 })
})
afterAll(async () => {
  await idp.close()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`--- stderr ---\n${deps.io.stderr()}`)
  idp.setGrantExtraScopes([])
  deps.cleanup()
})

async function setup(scope = 'db:read', settings: Array<[string, ...string[]]> = []): Promise<TestDeps> {
  deps = testDeps()
  audit = memoryAuditLog()
  deps.audit = audit
  const init = await jit(deps, 'config', 'init', 'p', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--scope', scope, '--insecure-loopback', '--flow', 'device', '--ttl-param', 'ttl')
  expect(init.code, init.stderr).toBe(0)
  for (const [field, ...values] of settings) expect((await jit(deps, 'config', 'set', 'p', field, ...values)).code).toBe(0)
  return deps
}

async function login(d: TestDeps, args: string[] = [], approve: Parameters<LocalProvider['approveDevice']>[1] = {}) {
  const offset = d.io.stderr().length
  const run = jit(d, 'login', '--json', ...args)
  const event = await waitForEvent(() => d.io.stderr().slice(offset), 'device_authorization')
  await idp.approveDevice(String(event.verification_uri_complete), approve)
  return run
}

describe('least privilege', () => {
  it('a grant broader than the request is refused and not stored (exit 5), unless the profile allows it', async () => {
    const d = await setup()
    idp.setGrantExtraScopes(['db:write'])
    const res = await login(d)
    expect(res.code).toBe(5)
    expect(res.stderr).toContain('jit: the provider granted more than was asked for (db:write); refused and not stored')
    expect(d.keychainStore.entries.size).toBe(0)
    expect(audit.events.map((e) => e.event)).toEqual(['login_failed'])

    expect((await jit(d, 'config', 'set', 'p', 'allow-broader-grant', 'true')).code).toBe(0)
    const ok = await login(d)
    expect(ok.code, ok.stderr).toBe(0)
    expect(events(ok.stderr).find((e) => e.event === 'logged_in')!.scope).toBe('db:read db:write')
  })

  it('a scope outside allowed-scopes is refused before any network call (exit 2)', async () => {
    const d = await setup('db:read', [['allowed-scopes', 'db:read']])
    // an issuer nobody answers at: a network call would be exit 1, not 2
    expect((await jit(d, 'config', 'set', 'p', 'issuer', 'http://127.0.0.1:9')).code).toBe(0)
    const res = await jit(d, 'login', '--json', '--scope', 'db:read db:write')
    expect(res.code).toBe(2)
    expect(res.stderr).toBe('jit: profile "p" does not allow the scope db:write\nallowed: db:read\n')
    expect((await jit(d, 'token', '--scope', 'db:write')).code).toBe(2)
  })

  it('a narrower grant is kept and reported', async () => {
    const d = await setup()
    const res = await login(d, ['--scope', 'db:read', '--scope', 'db:admin'])
    expect(res.code, res.stderr).toBe(0)
    expect(events(res.stderr).find((e) => e.event === 'warning')?.message).toBe('the provider did not grant: db:admin')
    // and it does not pass for what it was not given
    const token = await jit(d, 'token', '--scope', 'db:read db:admin')
    expect(token.code).toBe(4)
    expect(token.stderr).toContain('was not granted: db:admin')
  })
})

describe('resource indicators (RFC 8707)', () => {
  it('two resources: one consent covers both; the access token is for the first, and jit says so', async () => {
    const d = await setup('db:read api:read')
    const res = await login(d, ['--resource', 'urn:jit:db', '--resource', 'urn:jit:api'])
    expect(res.code, res.stderr).toBe(0)
    expect(events(res.stderr).find((e) => e.event === 'warning')?.message).toBe('the access token is for urn:jit:db; ask for the others with their own login')
    // the token carries what its resource grants (db:read), and is not passed off as one for api:read too
    expect(events(res.stderr).find((e) => e.event === 'logged_in')!.scope).toBe('db:read')
    const token = await jit(d, 'token', '--resource', 'urn:jit:db', '--resource', 'urn:jit:api')
    expect(token.code).toBe(4)
    expect(token.stderr).toContain('was not granted: api:read')
    // the other resource, on its own
    const api = await login(d, ['--scope', 'api:read', '--resource', 'urn:jit:api'])
    expect(api.code, api.stderr).toBe(0)
    const apiToken = await jit(d, 'token', '--scope', 'api:read', '--resource', 'urn:jit:api')
    expect(JSON.parse(Buffer.from(apiToken.stdout.split('.')[1]!, 'base64url').toString())).toMatchObject({ aud: 'urn:jit:api', scope: 'api:read' })
  })
})

describe('refresh only inside the TTL', () => {
  it('refreshes an expired access token while the login lasts, never past login + TTL', async () => {
    // opaque tokens (no resource) so only jit's clock and expires_in matter here
    const d = await setup('profile', [['allow-refresh', 'true'], ['leeway', '1s']])
    const res = await login(d, ['--ttl', '10m'])
    expect(res.code, res.stderr).toBe(0)
    const loggedIn = d.clock.now()
    const first = await jit(d, 'token')
    expect(first.code, first.stderr).toBe(0)

    // the access token (2 minutes) has expired, the login (10 minutes) has not: jit refreshes
    d.clock.advance(150_000)
    const second = await jit(d, 'token')
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).not.toBe(first.stdout)
    expect(audit.events.filter((e) => e.event === 'issued').map((e) => e.flow)).toEqual(['device', 'refresh'])

    // near the end, the refreshed token is capped at login + TTL
    d.clock.set(loggedIn + 580_000)
    const third = await jit(d, 'token', '--format', 'json')
    expect(third.code, third.stderr).toBe(0)
    expect(Date.parse(JSON.parse(third.stdout).expires_at)).toBeLessThanOrEqual(loggedIn + 600_000)

    // past login + TTL: refused, and the refresh token is deleted with the credential
    d.clock.set(loggedIn + 600_000)
    const late = await jit(d, 'token')
    expect(late.code).toBe(4)
    expect(d.keychainStore.entries.size).toBe(0)
  })

  it('a refresh the provider refuses (revoked elsewhere) says so, exit 4, and the credential goes', async () => {
    const d = await setup('profile', [['allow-refresh', 'true'], ['leeway', '1s']])
    expect((await login(d, ['--ttl', '10m'])).code).toBe(0)
    const stored = JSON.parse([...d.keychainStore.entries.values()][0]!) as { refreshToken: string }
    const revoked = await fetch(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: stored.refreshToken, token_type_hint: 'refresh_token', client_id: 'jit-cli' }),
    })
    expect(revoked.status).toBe(200)
    d.clock.advance(150_000)
    const res = await jit(d, 'token')
    expect(res.code).toBe(4)
    expect(res.stderr).toContain('jit: the provider refused to refresh the credential of profile "p"')
    expect(d.keychainStore.entries.size).toBe(0)
  })

  it('keeps no refresh token unless the profile allows it', async () => {
    const d = await setup('profile offline_access', [['leeway', '1s']])
    expect((await login(d, ['--ttl', '10m'])).code).toBe(0)
    const stored = JSON.parse([...d.keychainStore.entries.values()][0]!) as { refreshToken?: string }
    expect(stored.refreshToken).toBeUndefined()
    d.clock.advance(150_000)
    expect((await jit(d, 'token')).code).toBe(4)
  })
})

describe('revocation (RFC 7009)', () => {
  it('logout revokes the opaque access token and the refresh token at the provider', async () => {
    const d = await setup('profile', [['allow-refresh', 'true']])
    expect((await login(d)).code).toBe(0)
    const stored = JSON.parse([...d.keychainStore.entries.values()][0]!) as { accessToken: string; refreshToken: string }
    expect(await idp.userinfo(stored.accessToken)).toBe(200)
    expect((await idp.introspect(stored.refreshToken, 'refresh_token')).active).toBe(true)

    const out = await jit(d, 'logout', '--json')
    expect(out.code, out.stderr).toBe(0)
    expect(JSON.parse(out.stdout).revocations[0]).toMatchObject({ profile: 'p', access: 'revoked', refresh: 'revoked' })
    expect(await idp.userinfo(stored.accessToken)).toBe(401)
    expect((await idp.introspect(stored.refreshToken, 'refresh_token')).active).toBe(false)
    expect(d.keychainStore.entries.size).toBe(0)
    expect(audit.events.at(-1)).toMatchObject({ event: 'revoked', profile: 'p', detail: 'access token revoked, refresh token revoked' })
  })

  it('jit exec --revoke-on-exit revokes and deletes the credential when the command ends', async () => {
    const d = await setup('profile', [['allow-refresh', 'true']])
    expect((await login(d)).code).toBe(0)
    const stored = JSON.parse([...d.keychainStore.entries.values()][0]!) as { accessToken: string; refreshToken: string }
    const res = await jit(d, 'exec', '--revoke-on-exit', '--', process.execPath, '-e', 'process.exit(3)')
    expect(res.code).toBe(3)
    expect(res.stderr).toContain('jit: revoked the credential of profile "p" (access token revoked, refresh token revoked)')
    expect(await idp.userinfo(stored.accessToken)).toBe(401)
    expect((await idp.introspect(stored.refreshToken, 'refresh_token')).active).toBe(false)
    expect(d.keychainStore.entries.size).toBe(0)
    expect(audit.events.map((e) => e.event)).toEqual(['issued', 'used', 'revoked'])
    expect(audit.events[1]).toMatchObject({ via: 'exec', command: 'node' })
  })

  it('says what the provider cannot recall: a JWT access token stays valid until exp', async () => {
    const d = await setup()
    expect((await login(d)).code).toBe(0)
    const out = await jit(d, 'logout')
    expect(out.code).toBe(0)
    expect(out.stderr).toMatch(/note: the JWT access token stays valid at resource servers until \d{4}-/)
  })
})

describe('MFA and fresh sign-in', () => {
  it('require-acr: a sign-in at a lower level is refused (exit 5) and not stored; the right one passes', async () => {
    const d = await setup('db:read', [['require-acr', 'urn:jit:loa:2'], ['acr-values', 'urn:jit:loa:2']])
    const weak = await login(d, [], { acr: 'urn:jit:loa:1' })
    expect(weak.code).toBe(5)
    expect(weak.stderr).toContain('acr is "urn:jit:loa:1", required: urn:jit:loa:2')
    expect(d.keychainStore.entries.size).toBe(0)
    const strong = await login(d, [], { acr: 'urn:jit:loa:2' })
    expect(strong.code, strong.stderr).toBe(0)
  })

  it('require-amr otp: a password-only sign-in is refused', async () => {
    const d = await setup('db:read', [['require-amr', 'otp']])
    const pwd = await login(d, [], { amr: ['pwd'] })
    expect(pwd.code).toBe(5)
    expect(pwd.stderr).toContain('amr lacks otp (has pwd)')
    expect((await login(d, [], { amr: ['pwd', 'otp'] })).code).toBe(0)
  })

  it('--max-age: an old sign-in (auth_time) is refused', async () => {
    const d = await setup()
    const old = await login(d, ['--max-age', '5m'], { authTime: Math.floor(Date.now() / 1000) - 3600 })
    expect(old.code).toBe(5)
    expect(old.stderr).toMatch(/the sign-in is \d+s old, max age 300s/)
    expect((await login(d, ['--max-age', '5m'])).code).toBe(0)
  })
})

describe('the audit trail', () => {
  it('records issued, used, refused and expired, with --reason, and never a token', async () => {
    const d = await setup('db:read', [['leeway', '1s']])
    expect((await login(d, ['--ttl', '2m', '--reason', 'INC-1234'])).code).toBe(0)
    const token = (await jit(d, 'token')).stdout.trim()
    expect((await jit(d, 'token', '--min-ttl', '1h')).code).toBe(4)
    d.clock.advance(121_000)
    expect((await jit(d, 'token')).code).toBe(4)
    // --min-ttl 1h: refused; past the deadline: expired, and that request refused
    expect(audit.events.map((e) => e.event)).toEqual(['issued', 'used', 'refused', 'expired', 'refused'])
    expect(audit.events[0]).toMatchObject({ profile: 'p', note: 'INC-1234', flow: 'device', scopes: ['db:read'] })
    expect(audit.events[1]).toMatchObject({ via: 'token', fingerprint: audit.events[0]!.fingerprint })
    expect(JSON.stringify(audit.events)).not.toContain(token)
    expect(JSON.stringify(audit.events)).not.toContain(token.split('.')[2])
  })
})
