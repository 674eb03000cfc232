import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { componentGate, describeWithComponent } from '../support/components.js'
import { keyringAvailability, startPrivateKeyring, type PrivateKeyring } from '../support/keyring.js'
import { ROOT, assertBuilt } from '../support/spawn-jit.js'

const gate = componentGate('a Secret Service (gnome-keyring, dbus, libsecret-tools)', keyringAvailability)

function runDemo(env: Record<string, string | undefined>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'demo.mjs')], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    child.on('close', (code) => resolve({ code, stderr }))
  })
}

describeWithComponent('npm run demo', gate, () => {
  let keyring: PrivateKeyring
  beforeAll(async () => {
    assertBuilt()
    keyring = await startPrivateKeyring()
  })
  afterAll(async () => {
    await keyring?.stop()
  })

  it('runs the main job through the real CLI with the OS keychain, and leaves nothing in it', async () => {
    const res = await runDemo({ PATH: process.env.PATH, ...keyring.env, CI: 'true' })
    expect(res.code, res.stderr).toBe(0)
    expect(res.stderr).toContain('secrets go to: keychain')
    expect(res.stderr).toMatch(/exit 4: refused, and deleted from the keychain/)
    expect(res.stderr).toContain('demo finished')
    expect(await keyring.listAccounts('jit')).toEqual([])
  }, 60_000)

  it('falls back to the encrypted file store, and says so, when no keychain is reachable', async () => {
    const res = await runDemo({ PATH: process.env.PATH, HOME: keyring.env.HOME, CI: 'true' })
    expect(res.code, res.stderr).toBe(0)
    expect(res.stderr).toMatch(/secrets go to: file — no keychain here \(no secret service/)
    expect(res.stderr).toContain('demo finished')
  }, 60_000)
})
