import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { waitForEvent } from '../support/cli.js'
import { assertBuilt, runJit, startJit } from '../support/spawn-jit.js'

let idp: LocalProvider
let dir: string
let env: Record<string, string | undefined>
let token: string

/** A node script the child runs; it writes what it sees to `out`. */
function childScript(name: string, body: string): string {
  const path = join(dir, name)
  writeFileSync(path, body)
  return path
}

beforeAll(async () => {
  assertBuilt()
  idp = await startLocalProvider({ deviceInterval: 0.05 })
  dir = mkdtempSync(join(tmpdir(), 'jit-exec-'))
  // The file store keeps these tests independent of a keychain; the keychain path is covered elsewhere.
  env = { JIT_CONFIG_DIR: join(dir, 'cfg'), JIT_STORE_KEY: 'exec-tests', JIT_STORE: 'file' }
  const init = await runJit(['config', 'init', 'demo', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--scope', 'db:read', '--insecure-loopback', '--flow', 'device'], env)
  expect(init.code, init.stderr).toBe(0)
  expect((await runJit(['config', 'set', 'demo', 'leeway', '1s'], env)).code).toBe(0)
  const p = startJit(['login', '--json', '--ttl', '30m'], env)
  await idp.approveDevice(String((await waitForEvent(p.stderr, 'device_authorization')).verification_uri_complete))
  expect(await p.done, p.stderr()).toBe(0)
  token = (await runJit(['token'], env)).stdout.trim()
  expect(token).toMatch(/^eyJ/)
})
afterAll(async () => {
  await idp?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('jit exec (built binary, real child processes)', () => {
  it('puts the credential in the child\'s environment, never in its argv or jit\'s', async () => {
    const out = join(dir, 'seen.json')
    const script = childScript(
      'env.cjs',
      `const fs = require('fs')
       const cmd = (pid) => fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8')
       fs.writeFileSync(${JSON.stringify(out)}, JSON.stringify({ env: process.env, self: cmd('self'), parent: cmd(process.ppid) }))`,
    )
    const res = await runJit(
      ['exec', '--env', 'PGPASSWORD=access_token', '--env', 'PGUSER=claim:sub', '--env', 'AUTH=authorization', '--', process.execPath, script, '--flag'],
      { ...env, JIT_ACCESS_TOKEN: 'stale-from-parent', PGPASSWORD: 'old' },
    )
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toBe('')
    expect(res.stderr).not.toContain(token)
    const seen = JSON.parse(readFileSync(out, 'utf8')) as { env: Record<string, string>; self: string; parent: string }
    expect(seen.env.JIT_ACCESS_TOKEN).toBe(token)
    expect(seen.env.PGPASSWORD).toBe(token)
    expect(seen.env.AUTH).toBe(`Bearer ${token}`)
    expect(seen.env.PGUSER).toBe('alice')
    expect(seen.env.JIT_PROFILE).toBe('demo')
    // jit's own secrets stay with jit
    expect(seen.env.JIT_STORE_KEY).toBeUndefined()
    expect(Date.parse(seen.env.JIT_TOKEN_EXPIRES_AT!)).toBeGreaterThan(Date.now())
    expect(seen.self).toContain('--flag')
    expect(seen.self).not.toContain(token)
    expect(seen.parent).toContain('exec')
    expect(seen.parent).not.toContain(token)
  })

  it('uses the profile\'s exec-env', async () => {
    expect((await runJit(['config', 'set', 'demo', 'exec-env', 'DB_TOKEN=access_token', 'DB_SCOPE=scope'], env)).code).toBe(0)
    const out = join(dir, 'profile-env.json')
    const script = childScript('penv.cjs', `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env))`)
    const res = await runJit(['exec', '--', process.execPath, script], env)
    expect(res.code, res.stderr).toBe(0)
    const seen = JSON.parse(readFileSync(out, 'utf8')) as Record<string, string>
    expect(seen.DB_TOKEN).toBe(token)
    expect(seen.DB_SCOPE).toContain('db:read')
    expect((await runJit(['config', 'unset', 'demo', 'exec-env'], env)).code).toBe(0)
  })

  it.each([
    ['exit 7', 'process.exit(7)', 7],
    ['exit 0', '', 0],
    ['killed by SIGTERM', "process.kill(process.pid, 'SIGTERM')", 143],
    ['killed by SIGKILL', "process.kill(process.pid, 'SIGKILL')", 137],
  ])('passes the child\'s status through: %s', async (_name, code, status) => {
    const res = await runJit(['exec', '--', process.execPath, '-e', code], env)
    expect(res.code).toBe(status)
  })

  it('forwards signals to the child and exits with its status', async () => {
    const marker = join(dir, 'usr1')
    const script = childScript(
      'sig.cjs',
      `process.on('SIGUSR1', () => { require('fs').writeFileSync(${JSON.stringify(marker)}, 'got it'); process.exit(3) })
       process.on('SIGTERM', () => process.exit(4))
       require('fs').writeFileSync(${JSON.stringify(marker + '.ready')}, '')
       setInterval(() => {}, 1000)`,
    )
    const p = startJit(['exec', '--', process.execPath, script], env)
    await expect.poll(() => existsSync(`${marker}.ready`), { timeout: 10_000 }).toBe(true)
    p.child.kill('SIGUSR1')
    expect(await p.done).toBe(3)
    expect(readFileSync(marker, 'utf8')).toBe('got it')

    rmSync(`${marker}.ready`)
    const q = startJit(['exec', '--', process.execPath, script], env)
    await expect.poll(() => existsSync(`${marker}.ready`), { timeout: 10_000 }).toBe(true)
    q.child.kill('SIGTERM')
    expect(await q.done).toBe(4)
  })

  it('127 for a command that is not there, 126 for one that cannot run', async () => {
    const missing = await runJit(['exec', '--', 'no-such-command-jit-test'], env)
    expect(missing.code).toBe(127)
    expect(missing.stderr).toBe('jit: command not found: no-such-command-jit-test\n')
    const notExec = join(dir, 'not-executable.sh')
    writeFileSync(notExec, 'echo hi\n')
    chmodSync(notExec, 0o644)
    const denied = await runJit(['exec', '--', notExec], env)
    expect(denied.code).toBe(126)
    expect(denied.stderr).toMatch(/^jit: cannot run .*not-executable\.sh: permission denied\n$/)
  })

  it('refuses to nest inside jit exec for the same profile, unless --allow-nested', async () => {
    const nested = { ...env, JIT_PROFILE: 'demo', JIT_ACCESS_TOKEN: 'outer' }
    const res = await runJit(['exec', '--', process.execPath, '-e', ''], nested)
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('jit: already inside jit exec for profile "demo"')
    expect((await runJit(['exec', '--allow-nested', '--', process.execPath, '-e', ''], nested)).code).toBe(0)
    // A user who only chose the profile with JIT_PROFILE is not nested
    expect((await runJit(['exec', '--', process.execPath, '-e', ''], { ...env, JIT_PROFILE: 'demo' })).code).toBe(0)
  })

  it('exits 4 at once without a usable credential when nobody can log in', async () => {
    const res = await runJit(['exec', '--scope', 'db:write', '--', process.execPath, '-e', 'process.exit(9)'], { ...env, CI: 'true' })
    expect(res.code).toBe(4)
    expect(res.stderr).toContain('run: jit login --profile demo --scope db:write')
    const minTtl = await runJit(['exec', '--min-ttl', '2h', '--', process.execPath, '-e', 'process.exit(9)'], { ...env, CI: 'true' })
    expect(minTtl.code).toBe(4)
  })

  it('--on-expiry kill ends a child that outlives the deadline; warn only says so', async () => {
    // a short-lived credential for another scope set
    const p = startJit(['login', '--json', '--scope', 'openid', '--ttl', '3s'], env)
    await idp.approveDevice(String((await waitForEvent(p.stderr, 'device_authorization')).verification_uri_complete))
    expect(await p.done, p.stderr()).toBe(0)
    const started = Date.now()
    // a shell whose own child would outlive it: the whole process group is stopped
    const kill = startJit(['exec', '--scope', 'openid', '--on-expiry', 'kill', '--kill-grace', '1s', '--', 'sh', '-c', 'sleep 31.77; echo survived'], env)
    const code = await kill.done
    expect(code).toBe(143)
    expect(kill.stdout()).not.toContain('survived')
    const { execFileSync } = await import('node:child_process')
    const left = (() => {
      try {
        return execFileSync('pgrep', ['-f', 'sleep 31.77'], { encoding: 'utf8' })
      } catch {
        return ''
      }
    })()
    expect(left).toBe('')
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(kill.stderr()).toMatch(/reached its deadline; stopping .* \(SIGTERM, then SIGKILL after 1s\)/)
  }, 30_000)

  it('--on-expiry warn lets the child finish and prints one line', async () => {
    const p = startJit(['login', '--json', '--scope', 'profile', '--ttl', '3s'], env)
    await idp.approveDevice(String((await waitForEvent(p.stderr, 'device_authorization')).verification_uri_complete))
    expect(await p.done, p.stderr()).toBe(0)
    const res = await runJit(['exec', '--scope', 'profile', '--', process.execPath, '-e', 'setTimeout(() => process.exit(5), 4000)'], env)
    expect(res.code).toBe(5)
    expect(res.stderr.match(/reached its deadline/g)).toHaveLength(1)
    expect(res.stderr).toContain('keeps running, but its token is no longer valid')
  }, 30_000)
})

describe('the audit trail after the runs above', () => {
  it('holds the expected events and no token, secret or command argument', () => {
    const text = readFileSync(join(String(env.JIT_CONFIG_DIR), 'audit.log'), 'utf8')
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    const kinds = new Set(lines.map((l) => l.event))
    for (const k of ['issued', 'used', 'refused']) expect(kinds, k).toContain(k)
    const usedByExec = lines.filter((l) => l.event === 'used' && l.via === 'exec')
    expect(usedByExec.length).toBeGreaterThan(3)
    expect(new Set(usedByExec.map((l) => l.command))).toContain('node')
    for (const l of usedByExec) expect(String(l.command)).not.toContain('/')
    expect(text).not.toContain(token)
    expect(text).not.toContain(token.split('.')[2]!)
    expect(text).not.toContain('--flag')
    expect(text).not.toContain('process.exit')
    expect(text).not.toContain('exec-tests') // JIT_STORE_KEY
    expect(statSync(join(String(env.JIT_CONFIG_DIR), 'audit.log')).mode & 0o077).toBe(0)
  })
})
