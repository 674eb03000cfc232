import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { waitForEvent } from '../support/cli.js'
import { assertBuilt, runJit, startJit } from '../support/spawn-jit.js'

let idp: LocalProvider
let dir: string
let env: Record<string, string | undefined>

beforeAll(async () => {
  assertBuilt()
  idp = await startLocalProvider()
  dir = mkdtempSync(join(tmpdir(), 'jit-int-'))
  env = { JIT_CONFIG_DIR: dir, JIT_STORE: 'file', JIT_STORE_KEY: 'interrupt-tests' }
  const init = await runJit(['config', 'init', 'web', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--insecure-loopback', '--flow', 'pkce'], env)
  expect(init.code, init.stderr).toBe(0)
})
afterAll(async () => {
  await idp?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('Ctrl-C during a browser login', () => {
  it('exits 130, closes the loopback listener and stores nothing', async () => {
    const p = startJit(['login', '--json', '--no-browser'], env)
    const request = await waitForEvent(p.stderr, 'authorization_request')
    const redirect = String(request.redirect_uri)
    // the listener is up while jit waits
    expect((await fetch(`${redirect}?state=nope`)).status).toBe(400)
    p.child.kill('SIGINT')
    expect(await p.done).toBe(130)
    expect(p.stderr()).toContain('jit: login interrupted; nothing was stored')
    await expect(fetch(redirect)).rejects.toThrow()
    const path = join(dir, 'state.json')
    if (existsSync(path)) expect((JSON.parse(readFileSync(path, 'utf8')) as { credentials: object }).credentials).toEqual({})
    expect(existsSync(join(dir, 'secrets.enc.json')) ? readFileSync(join(dir, 'secrets.enc.json'), 'utf8') : '').not.toMatch(/"entries":\{"/)
  })
})
