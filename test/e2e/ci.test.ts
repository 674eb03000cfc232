import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { startCiIssuer, type CiIssuer } from '../support/ci-issuer.js'
import { assertBuilt, runJit } from '../support/spawn-jit.js'

let idp: LocalProvider
let github: CiIssuer
let gitlab: CiIssuer
let root: string
let n = 0

/** A fresh config folder, lock folder and the CI job's environment (no keychain: a CI runner). */
function ciEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  n += 1
  const dir = join(root, `job-${n}`)
  mkdirSync(join(dir, 'run'), { recursive: true, mode: 0o700 })
  return { CI: 'true', JIT_CONFIG_DIR: join(dir, 'cfg'), XDG_RUNTIME_DIR: join(dir, 'run'), JIT_CI_SECRET: idp.ciClientSecret, ...extra }
}

async function init(env: Record<string, string | undefined>, ...args: string[]): Promise<void> {
  const res = await runJit(['config', 'init', 'deploy', '--issuer', idp.issuer, '--insecure-loopback', '--scope', 'db:read', ...args], env)
  expect(res.code, res.stderr).toBe(0)
}

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
}

beforeAll(async () => {
  assertBuilt()
  root = mkdtempSync(join(tmpdir(), 'jit-ci-'))
  github = await startCiIssuer({ kind: 'github' })
  gitlab = await startCiIssuer({ kind: 'gitlab' })
  idp = await startLocalProvider({
    trustedCiIssuers: [github.trustEntry('jit-test', { 'acme/deploy': ['db:read'] }), gitlab.trustEntry('jit-test', { 'acme/deploy': ['db:read'] })],
  })
})
afterAll(async () => {
  await idp?.close()
  await github?.close()
  await gitlab?.close()
  rmSync(root, { recursive: true, force: true })
})

describe('client credentials', () => {
  it('a secret from the named variable: jit token prints a JWT for the resource, in each format', async () => {
    const env = ciEnv()
    await init(env, '--client-id', 'jit-ci', '--flow', 'client-credentials', '--client-secret-env', 'JIT_CI_SECRET', '--ttl', '10m')
    const res = await runJit(['token', '--debug'], env)
    expect(res.code, res.stderr).toBe(0)
    expect(res.stderr).toContain('no keychain here (no D-Bus session): nothing is kept (--store none)')
    expect(claims(res.stdout.trim())).toMatchObject({ aud: 'urn:jit:db', client_id: 'jit-ci' })
    expect(String(claims(res.stdout.trim()).scope)).toBe('db:read')
    expect(res.stderr).not.toContain(idp.ciClientSecret)

    const header = await runJit(['token', '--format', 'header'], env)
    expect(header.stdout).toMatch(/^Authorization: Bearer eyJ[\w.-]+\n$/)
    const exported = await runJit(['token', '--format', 'env'], env)
    expect(exported.stdout).toMatch(/^export JIT_ACCESS_TOKEN='eyJ[\w.-]+'\nexport JIT_TOKEN_EXPIRES_AT='\d{4}-\d\d-\d\dT[\d:.]+Z'\n$/)
    const k8s = JSON.parse((await runJit(['token', '--format', 'exec-credential'], env)).stdout) as Record<string, { token?: string; expirationTimestamp?: string }>
    expect(k8s).toMatchObject({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential' })
    expect(k8s.status!.token).toMatch(/^eyJ/)
    expect(k8s.status!.expirationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    const tooLong = await runJit(['token', '--min-ttl', '2h'], env)
    expect(tooLong.code).toBe(2)
    expect(tooLong.stderr).toMatch(/^jit: --min-ttl cannot be met/)
    const json = JSON.parse((await runJit(['token', '--format', 'json'], env)).stdout) as Record<string, unknown>
    expect(json).toMatchObject({ token_type: 'bearer', profile: 'deploy', scope: 'db:read' })
    expect(Number(json.expires_in)).toBeLessThanOrEqual(600)
  })

  it('a missing secret variable is exit 4 with what to set, and the secret never lands in config', async () => {
    const env = ciEnv({ JIT_CI_SECRET: undefined })
    await init(env, '--client-id', 'jit-ci', '--flow', 'client-credentials', '--client-secret-env', 'JIT_CI_SECRET')
    const res = await runJit(['token'], env)
    expect(res.code).toBe(4)
    expect(res.stderr).toBe('jit: the variable JIT_CI_SECRET with the client secret of profile "deploy" is not set\nexport JIT_CI_SECRET=... (from your CI system\'s secret store)\n')
  })

  it('private_key_jwt with a key file named by the profile (RFC 7523)', async () => {
    const env = ciEnv()
    const keyFile = join(String(env.JIT_CONFIG_DIR), '..', 'client.pem')
    writeFileSync(keyFile, idp.ciPrivateKeyPem, { mode: 0o600 })
    await init(env, '--client-id', 'jit-ci-jwt', '--flow', 'client-credentials')
    expect((await runJit(['config', 'set', 'deploy', 'private-key-file', keyFile], env)).code).toBe(0)
    expect((await runJit(['config', 'set', 'deploy', 'private-key-kid', idp.ciKeyId], env)).code).toBe(0)
    const res = await runJit(['token'], env)
    expect(res.code, res.stderr).toBe(0)
    expect(claims(res.stdout.trim())).toMatchObject({ client_id: 'jit-ci-jwt', aud: 'urn:jit:db' })
  })
})

describe('workload identity (token exchange)', () => {
  it('GitHub Actions: asks for an ID token with the profile\'s audience and trades it for a narrow token', async () => {
    const env = ciEnv(github.githubEnv())
    await init(env, '--client-id', 'jit-ci', '--flow', 'token-exchange', '--client-secret-env', 'JIT_CI_SECRET')
    expect((await runJit(['config', 'set', 'deploy', 'subject-token', 'github'], env)).code).toBe(0)
    expect((await runJit(['config', 'set', 'deploy', 'subject-audience', 'jit-test'], env)).code).toBe(0)
    const before = github.requests.length
    const res = await runJit(['token'], env)
    expect(res.code, res.stderr).toBe(0)
    expect(github.requests.slice(before)).toEqual([expect.objectContaining({ audience: 'jit-test', authorized: true })])
    expect(claims(res.stdout.trim())).toMatchObject({ aud: 'urn:jit:db', scope: 'db:read', sub: 'repo:acme/deploy:ref:refs/heads/main' })

    // asking for more than the workload may have: the provider narrows, and jit will not pass it off as the wider one
    const wider = await runJit(['token', '--scope', 'db:read db:write'], env)
    expect(wider.code).toBe(5)
    expect(wider.stdout).toBe('')
    expect(wider.stderr).toBe('jit: the provider did not grant db:write to profile "deploy"\ngranted: db:read\n')
  })

  it('GitHub Actions without id-token: write is exit 4 at once, naming the permission', async () => {
    const env = ciEnv()
    await init(env, '--client-id', 'jit-ci', '--flow', 'token-exchange', '--client-secret-env', 'JIT_CI_SECRET')
    expect((await runJit(['config', 'set', 'deploy', 'subject-token', 'github'], env)).code).toBe(0)
    const res = await runJit(['token'], env)
    expect(res.code).toBe(4)
    expect(res.stderr).toBe('jit: GitHub Actions offers no OIDC token to this job\nadd "permissions: id-token: write" to the workflow or job\n')
  })

  it('GitLab CI (the id_tokens variable) and --subject-token-file', async () => {
    const env = ciEnv(await gitlab.gitlabEnv('JIT_ID_TOKEN', 'jit-test'))
    await init(env, '--client-id', 'jit-ci', '--flow', 'token-exchange', '--client-secret-env', 'JIT_CI_SECRET')
    expect((await runJit(['config', 'set', 'deploy', 'subject-token', 'env:JIT_ID_TOKEN'], env)).code).toBe(0)
    const res = await runJit(['token'], env)
    expect(res.code, res.stderr).toBe(0)
    expect(claims(res.stdout.trim()).scope).toBe('db:read')

    const fileEnv = ciEnv()
    await init(fileEnv, '--client-id', 'jit-ci', '--flow', 'token-exchange', '--client-secret-env', 'JIT_CI_SECRET')
    const tokenFile = join(String(fileEnv.JIT_CONFIG_DIR), '..', 'ci-token')
    writeFileSync(tokenFile, `${await github.mint({ aud: 'jit-test', repository: 'acme/deploy' })}\n`)
    const fromFile = await runJit(['token', '--subject-token-file', tokenFile], fileEnv)
    expect(fromFile.code, fromFile.stderr).toBe(0)

    const untrusted = ciEnv()
    await init(untrusted, '--client-id', 'jit-ci', '--flow', 'token-exchange', '--client-secret-env', 'JIT_CI_SECRET')
    writeFileSync(tokenFile, await github.mint({ aud: 'someone-else', repository: 'acme/deploy' }))
    const refused = await runJit(['token', '--subject-token-file', tokenFile], untrusted)
    expect(refused.code).toBe(5)
    expect(refused.stderr).toMatch(/^jit: the provider refused the grant \(invalid_grant/)
  })
})

describe('many jobs at once', () => {
  it('20 parallel jit token calls on an empty cache make one token request and print the same token', async () => {
    const env = ciEnv({ JIT_STORE: 'file', JIT_STORE_KEY: 'ci-shared' })
    await init(env, '--client-id', 'jit-ci', '--flow', 'client-credentials', '--client-secret-env', 'JIT_CI_SECRET')
    idp.resetCounters()
    const results = await Promise.all(Array.from({ length: 20 }, () => runJit(['token'], env)))
    for (const r of results) expect(r.code, r.stderr).toBe(0)
    expect(new Set(results.map((r) => r.stdout)).size).toBe(1)
    expect(idp.tokenRequests).toBe(1)
  }, 120_000)

  it('a lock left by a SIGKILLed process does not block the next run', async () => {
    const env = ciEnv({ JIT_STORE: 'file', JIT_STORE_KEY: 'ci-stale' })
    await init(env, '--client-id', 'jit-ci', '--flow', 'client-credentials', '--client-secret-env', 'JIT_CI_SECRET')
    // Given a jit that holds the lock and is killed -9 while fetching
    const victim = spawn('sleep', ['30'])
    await new Promise((r) => victim.once('spawn', r))
    const pid = victim.pid!
    victim.kill('SIGKILL')
    await new Promise((r) => victim.once('exit', r))
    const lockDir = join(String(env.XDG_RUNTIME_DIR), 'jit', 'locks')
    mkdirSync(lockDir, { recursive: true, mode: 0o700 })
    // the lock name is the cache key with "/" replaced; any stale lock for the profile's key shows the recovery
    const { cacheKey } = await import('../../src/store/cache-key.js')
    const key = cacheKey({ profile: 'deploy', issuer: idp.issuer, clientId: 'jit-ci', scopes: ['db:read', 'openid'], resources: [] }).replace('/', '.')
    writeFileSync(join(lockDir, `${key}.lock`), JSON.stringify({ pid, host: (await import('node:os')).hostname(), at: Date.now() }))
    const t = Date.now()
    const res = await runJit(['token'], env)
    expect(res.code, res.stderr).toBe(0)
    expect(Date.now() - t).toBeLessThan(10_000)
    expect(existsSync(join(lockDir, `${key}.lock`))).toBe(false)
  })
})

describe('non-interactive', () => {
  it('under CI=true a device-flow profile with no credential exits 4 within a second and opens nothing', async () => {
    const env = ciEnv()
    const marker = join(root, 'browser-opened')
    writeFileSync(join(root, 'browser.sh'), `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 })
    await init(env, '--client-id', 'jit-cli', '--flow', 'device')
    const started = Date.now()
    const res = await runJit(['token', '--login'], { ...env, BROWSER: join(root, 'browser.sh'), DISPLAY: ':0' })
    const took = Date.now() - started
    expect(res.code).toBe(4)
    expect(res.stderr).toMatch(/^jit: profile "deploy" has no cached credential/)
    expect(took).toBeLessThan(1_500)
    const login = await runJit(['login'], { ...env, BROWSER: join(root, 'browser.sh'), DISPLAY: ':0' })
    expect(login.code).toBe(4)
    expect(existsSync(marker)).toBe(false)
  })
})
