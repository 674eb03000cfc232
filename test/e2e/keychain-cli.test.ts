import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { events, waitForEvent } from '../support/cli.js'
import { componentGate, describeWithComponent } from '../support/components.js'
import { keyringAvailability, startPrivateKeyring, type PrivateKeyring } from '../support/keyring.js'
import { ROOT, assertBuilt, runJit, startJit } from '../support/spawn-jit.js'

const gate = componentGate('a Secret Service (gnome-keyring, dbus, libsecret-tools)', keyringAvailability)

describeWithComponent('the built jit with the real Secret Service', gate, () => {
  let keyring: PrivateKeyring
  let idp: LocalProvider
  let dir: string
  let env: Record<string, string | undefined>

  beforeAll(async () => {
    assertBuilt()
    keyring = await startPrivateKeyring()
    idp = await startLocalProvider({ deviceInterval: 0.05 })
  })
  afterAll(async () => {
    await idp?.close()
    await keyring?.stop()
  })
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'jit-e2e-'))
    env = { ...keyring.env, JIT_CONFIG_DIR: dir }
    const init = await runJit(
      ['config', 'init', 'demo', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--scope', 'db:read', '--insecure-loopback', '--ttl-param', 'ttl'],
      env,
    )
    expect(init.code, init.stderr).toBe(0)
  })
  afterEach(async () => {
    // logout --all also removes keychain entries the state file does not know, which the next test relies on
    const out = await runJit(['logout', '--all'], env)
    expect(out.code, out.stderr).toBe(0)
    expect(await keyring.listAccounts('jit')).toEqual([])
    rmSync(dir, { recursive: true, force: true })
  })

  /** Starts `jit login --json` and approves the device code as the person would. */
  async function login(args: string[] = [], extraEnv: Record<string, string | undefined> = {}) {
    const p = startJit(['login', '--json', ...args], { ...env, ...extraEnv })
    const event = await waitForEvent(p.stderr, 'device_authorization')
    await idp.approveDevice(String(event.verification_uri_complete))
    const code = await p.done
    return { code, stdout: p.stdout(), stderr: p.stderr() }
  }

  function filesUnder(root: string): string[] {
    return readdirSync(root, { recursive: true, encoding: 'utf8' })
      .map((f) => join(root, f))
      .filter((f) => statSync(f).isFile())
  }

  it('login → token → status → refused and deleted after the deadline', async () => {
    // Given a profile with a 1 s leeway, so a 4 s credential is served before it is refused
    expect((await runJit(['config', 'set', 'demo', 'leeway', '1s'], env)).code).toBe(0)

    // When the person logs in for 4 seconds
    const started = Date.now()
    const res = await login(['--ttl', '4s'])
    expect(res.code, res.stderr).toBe(0)

    // Then the credential is in the Secret Service under service "jit", account "demo/<sha256>"
    const accounts = await keyring.listAccounts('jit')
    expect(accounts).toHaveLength(1)
    expect(accounts[0]).toMatch(/^demo\/[0-9a-f]{64}$/)

    // And jit token prints exactly the token
    const token = await runJit(['token'], env)
    expect(token.code, token.stderr).toBe(0)
    expect(token.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/)
    expect(token.stderr).toBe('')
    const accessToken = token.stdout.trim()

    const status = await runJit(['status', '--json'], env)
    expect(status.code).toBe(0)
    expect(JSON.parse(status.stdout).credentials[0]).toMatchObject({ profile: 'demo', capped_by: 'ttl', store: 'keychain' })

    // And the token is in no file under JIT_CONFIG_DIR and on no stderr
    for (const file of filesUnder(dir)) expect(readFileSync(file, 'utf8'), file).not.toContain(accessToken)
    expect(res.stderr + status.stderr).not.toContain(accessToken)
    for (const file of filesUnder(dir)) expect(statSync(file).mode & 0o077, file).toBe(0)

    // When the deadline has passed
    await new Promise((r) => setTimeout(r, Math.max(0, started + 4_500 - Date.now())))
    const late = await runJit(['token'], env)

    // Then jit token exits 4, says what to run, and the keychain entry is gone
    expect(late.code).toBe(4)
    expect(late.stdout).toBe('')
    expect(late.stderr).toMatch(/^jit: the credential of profile "demo" (expired at .* and was deleted|expires in .*)\nrun: jit login --profile demo\n/)
    if (!late.stderr.includes('deleted')) expect((await runJit(['token'], env)).code).toBe(4)
    await new Promise((r) => setTimeout(r, 600))
    expect((await runJit(['status', '--json'], env)).code).toBe(0)
    expect(await keyring.listAccounts('jit')).toEqual([])
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).credentials).toEqual({})
  })

  it('a cache hit loads neither openid-client nor the browser code', async () => {
    expect((await login()).code).toBe(0)
    const trace = join(dir, 'imports.txt')
    const res = await runJit(['token'], { ...env, JIT_TRACE_IMPORTS_FILE: trace }, ['--import', join(ROOT, 'scripts', 'trace-imports.mjs')])
    expect(res.code, res.stderr).toBe(0)
    const loaded = readFileSync(trace, 'utf8')
    expect(loaded).toContain('/dist/cli/commands/token.js')
    for (const heavy of ['node_modules/openid-client/', 'node_modules/oauth4webapi/', 'node_modules/open/', 'node_modules/uqr/', 'node_modules/conf/', '/dist/oidc/', '/dist/cli/commands/login.js']) {
      expect(loaded, heavy).not.toContain(heavy)
    }
  })

  it('says the keychain is unreachable before the login starts (exit 3) and names the alternatives', async () => {
    idp.resetCounters()
    const noBus = { ...env, DBUS_SESSION_BUS_ADDRESS: undefined }
    const res = await runJit(['login', '--json'], noBus)
    expect(res.code).toBe(3)
    expect(res.stderr).toMatch(/^jit: no secret service/)
    expect(res.stderr).toContain('--store file')
    expect(res.stderr).toContain('--store none')
    expect(events(res.stderr).map((e) => e.event)).not.toContain('device_authorization')
    expect(idp.tokenRequests).toBe(0)
  })

  it('Ctrl-C while waiting for approval exits 130 and stores nothing', async () => {
    const p = startJit(['login', '--json'], env)
    await waitForEvent(p.stderr, 'device_authorization')
    p.child.kill('SIGINT')
    expect(await p.done).toBe(130)
    expect(p.stderr()).toContain('jit: login interrupted; nothing was stored')
    expect(await keyring.listAccounts('jit')).toEqual([])
    expect((await runJit(['token'], env)).code).toBe(4)
  })

  it('the encrypted file store works without a keychain and rejects a wrong passphrase', async () => {
    const fileEnv = { ...env, DBUS_SESSION_BUS_ADDRESS: undefined, JIT_STORE_KEY: 'correct horse battery staple' }
    const res = await login(['--store', 'file'], fileEnv)
    expect(res.code, res.stderr).toBe(0)
    const token = await runJit(['token'], fileEnv)
    expect(token.code, token.stderr).toBe(0)
    const sealed = readFileSync(join(dir, 'secrets.enc.json'), 'utf8')
    expect(sealed).not.toContain(token.stdout.trim())
    expect(sealed).not.toContain(token.stdout.trim().split('.')[1])
    const wrong = await runJit(['token'], { ...fileEnv, JIT_STORE_KEY: 'wrong' })
    expect(wrong.code).toBe(3)
    expect(wrong.stderr).toMatch(/^jit: wrong passphrase for the file store\n/)
  })

  it('refuses to start a device login with nobody to approve it (CI=true) with exit 4, at once', async () => {
    const t = Date.now()
    const res = await runJit(['login'], { ...env, CI: 'true' })
    expect(res.code).toBe(4)
    expect(res.stderr).toMatch(/^jit: jit login needs a person/)
    expect(Date.now() - t).toBeLessThan(5_000)
  })

  it('usage errors exit 2 with one line and a hint', async () => {
    const bad = await runJit(['token', '--format', 'xml'], env)
    expect(bad.code).toBe(2)
    expect(bad.stderr.split('\n')[0]).toMatch(/^jit: option '--format <format>' argument 'xml' is invalid/)
    const missing = await runJit(['token', '--profile', 'nope'], env)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toBe('jit: profile "nope" does not exist\nknown profiles: demo\n')
  })
})

describeWithComponent('the built jit with a locked Secret Service', gate, () => {
  let keyring: PrivateKeyring
  let idp: LocalProvider
  let dir: string

  beforeAll(async () => {
    assertBuilt()
    keyring = await startPrivateKeyring()
    idp = await startLocalProvider({ deviceInterval: 0.05 })
    dir = mkdtempSync(join(tmpdir(), 'jit-e2e-locked-'))
  })
  afterAll(async () => {
    await idp?.close()
    await keyring?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a locked keychain is exit 3 with one line, and the credential is not lost', async () => {
    const env = { ...keyring.env, JIT_CONFIG_DIR: dir }
    await runJit(['config', 'init', 'demo', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--scope', 'db:read', '--insecure-loopback'], env)
    const p = startJit(['login', '--json'], env)
    await idp.approveDevice(String((await waitForEvent(p.stderr, 'device_authorization')).verification_uri_complete))
    expect(await p.done).toBe(0)

    // When the keyring gets locked (screen lock, timeout)
    await keyring.lock()
    const t = Date.now()
    const res = await runJit(['token'], env)

    // Then jit token fails fast with exit 3 and a one-line reason, and keeps the state entry for later
    expect(res.code).toBe(3)
    expect(res.stdout).toBe('')
    expect(res.stderr.split('\n')[0]).toMatch(/^jit: keychain read failed: .*(locked|dismissed|prompt)/)
    expect(Date.now() - t).toBeLessThan(5_000)
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).credentials).not.toEqual({})
  })
})
