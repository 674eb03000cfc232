import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { waitForEvent } from '../support/cli.js'
import { componentGate, describeWithComponent } from '../support/components.js'
import { startLdapValidator, type LdapValidator } from '../support/ldap-validator.js'
import { postgresAvailability, startPostgres, type TestPostgres } from '../support/postgres.js'
import { assertBuilt, runJit, startJit } from '../support/spawn-jit.js'

const gate = componentGate('PostgreSQL 15 with psql', postgresAvailability)

describeWithComponent('jit exec -- psql against a real PostgreSQL that takes the token as its password', gate, () => {
  let idp: LocalProvider
  let ldap: LdapValidator
  let pg: TestPostgres
  let dir: string
  let env: Record<string, string | undefined>

  beforeAll(async () => {
    assertBuilt()
    idp = await startLocalProvider({ deviceInterval: 0.05 })
    ldap = await startLdapValidator({ jwks: idp.publicJwks, issuer: idp.issuer })
    pg = await startPostgres({ ldapPort: ldap.port })
    dir = mkdtempSync(join(tmpdir(), 'jit-psql-'))
    // psql gets host and port from PG* variables (jit passes the environment on), the password from jit
    env = { ...pg.env, JIT_CONFIG_DIR: dir, JIT_STORE: 'file', JIT_STORE_KEY: 'psql-tests' }
    const init = await runJit(['config', 'init', 'db', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--scope', 'db:read', '--insecure-loopback', '--flow', 'device', '--ttl-param', 'ttl'], env)
    expect(init.code, init.stderr).toBe(0)
    for (const [field, ...values] of [['exec-env', 'PGPASSWORD=access_token'], ['leeway', '1s']] as const) {
      expect((await runJit(['config', 'set', 'db', field, ...values], env)).code).toBe(0)
    }
  }, 60_000)
  afterAll(async () => {
    await pg?.stop()
    await ldap?.close()
    await idp?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('runs psql as jit_read with a db:read token, refuses jit_write, and after the deadline refuses to run at all', async () => {
    // Given a person logged in for db:read, for 6 seconds
    const login = startJit(['login', '--json', '--ttl', '6s'], env)
    await idp.approveDevice(String((await waitForEvent(login.stderr, 'device_authorization')).verification_uri_complete))
    expect(await login.done, login.stderr()).toBe(0)
    const loggedInAt = Date.now()
    const token = (await runJit(['token'], env)).stdout.trim()

    // When psql runs through jit exec, the server validates the token and the role fits the scope
    const read = await runJit(['exec', '--', 'psql', '-X', '-w', '-At', '-U', 'jit_read', '-c', 'select current_user'], env)
    expect(read.code, read.stderr).toBe(0)
    expect(read.stdout).toBe('jit_read\n')
    expect(ldap.binds.at(-1)).toMatchObject({ dn: 'uid=jit_read,ou=jit', ok: true })

    // A db:read credential cannot log in as jit_write
    const write = await runJit(['exec', '--', 'psql', '-X', '-w', '-At', '-U', 'jit_write', '-c', 'select current_user'], env)
    expect(write.code).toBe(2)
    expect(write.stderr).toContain('LDAP authentication failed for user "jit_write"')
    expect(ldap.binds.at(-1)).toMatchObject({ dn: 'uid=jit_write,ou=jit', ok: false, reason: 'scope db:write required for role jit_write' })
    expect(write.stderr).not.toContain(token)

    // After the deadline jit refuses to run psql (exit 4) and psql never reaches the server
    await new Promise((r) => setTimeout(r, Math.max(0, loggedInAt + 6_500 - Date.now())))
    const bindsBefore = ldap.binds.length
    const late = await runJit(['exec', '--', 'psql', '-X', '-w', '-At', '-U', 'jit_read', '-c', 'select 1'], { ...env, CI: 'true' })
    expect(late.code).toBe(4)
    expect(late.stdout).toBe('')
    expect(ldap.binds.length).toBe(bindsBefore)

    // And the server refuses the stale token too when it is replayed by hand
    const replay = await pg.psql(['-U', 'jit_read', '-At', '-c', 'select 1'], { PGPASSWORD: token })
    expect(replay.code).toBe(2)
    expect(ldap.binds.at(-1)).toMatchObject({ dn: 'uid=jit_read,ou=jit', ok: false, reason: 'token expired' })
  }, 60_000)
})
