import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { events } from '../support/cli.js'
import { CHROMIUM_DRIVER, chromiumAvailability } from '../support/chromium.js'
import { componentGate, describeWithComponent, type ComponentCheck } from '../support/components.js'
import { keyringAvailability, startPrivateKeyring, type PrivateKeyring } from '../support/keyring.js'
import { assertBuilt, runJit } from '../support/spawn-jit.js'

function both(): ComponentCheck {
  const c = chromiumAvailability()
  if (!c.ok) return c
  return keyringAvailability()
}
const gate = componentGate('Chromium with playwright-core and a Secret Service', both)

describeWithComponent('jit login in a real browser (Chromium via playwright-core as $BROWSER)', gate, () => {
  let keyring: PrivateKeyring
  let idp: LocalProvider
  let dir: string
  let env: Record<string, string | undefined>

  beforeAll(async () => {
    assertBuilt()
    keyring = await startPrivateKeyring()
    idp = await startLocalProvider()
    dir = mkdtempSync(join(tmpdir(), 'jit-e2e-browser-'))
    env = { ...keyring.env, JIT_CONFIG_DIR: dir, BROWSER: `${process.execPath} ${CHROMIUM_DRIVER}` }
    const init = await runJit(['config', 'init', 'web', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--scope', 'db:read', '--insecure-loopback'], env)
    expect(init.code, init.stderr).toBe(0)
  })
  afterAll(async () => {
    await idp?.close()
    await keyring?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('signs in at the provider\'s pages, lands on jit\'s callback, and jit token prints the token', async () => {
    const report = join(dir, 'browser-report.json')
    // --flow auto picks the browser because $BROWSER is set
    const login = await runJit(['login', '--json', '--ttl', '15m'], { ...env, JIT_TEST_BROWSER_REPORT: report })
    expect(login.code, login.stderr).toBe(0)
    const evs = events(login.stderr)
    expect(evs.find((e) => e.event === 'login_started')).toMatchObject({ flow: 'pkce', flow_reason: '$BROWSER is set' })
    expect(evs.map((e) => e.event)).toEqual(expect.arrayContaining(['authorization_request', 'browser_opened', 'logged_in']))

    const token = await runJit(['token'], env)
    expect(token.code, token.stderr).toBe(0)
    expect(token.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/)

    // The browser ended on jit's page, which says it worked and shows no token
    await expect.poll(() => existsSync(report), { timeout: 20_000 }).toBe(true)
    const landed = JSON.parse(readFileSync(report, 'utf8')) as { ok: boolean; status: number; text: string; final_url: string }
    expect(landed).toMatchObject({ ok: true, status: 200 })
    expect(landed.final_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
    expect(landed.text).toContain('Signed in')
    expect(landed.text).not.toContain(token.stdout.trim())
    expect(await keyring.listAccounts('jit')).toHaveLength(1)
  }, 90_000)

  it('a person who cancels at the provider ends the login with exit 5', async () => {
    const res = await runJit(['login', '--json', '--flow', 'pkce'], { ...env, JIT_TEST_BROWSER_DENY: '1' })
    expect(res.code).toBe(5)
    expect(res.stderr).toMatch(/jit: the login was refused \(access_denied/)
  }, 90_000)
})
