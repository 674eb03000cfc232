#!/usr/bin/env node
/**
 * `npm run bench`: how much a cache hit of `jit token` costs compared with starting Node itself.
 *
 * Runs `node -e 0` and `node bin/jit.js token` side by side (alternating, so both see the same machine load), prints
 * the median of each, their ratio and each one's peak RSS, and checks that the cache hit loaded no openid-client.
 * Uses the OS keychain when a Secret Service is reachable; otherwise it re-runs itself inside a private
 * `dbus-run-session` with a throwaway gnome-keyring, and falls back to the file store only when that is missing too.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = join(root, 'bin', 'jit.js')
const RUNS = Number(process.env.BENCH_RUNS ?? 30)

const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0

if (process.platform === 'linux' && !process.env.DBUS_SESSION_BUS_ADDRESS && !process.argv.includes('--inner')) {
  if (onPath('dbus-run-session') && onPath('gnome-keyring-daemon')) {
    const home = mkdtempSync(join(tmpdir(), 'jit-bench-home-'))
    const inner = `printf bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; exec "${process.execPath}" "${fileURLToPath(import.meta.url)}" --inner`
    const res = spawnSync('dbus-run-session', ['--', 'sh', '-c', inner], {
      stdio: 'inherit',
      env: { ...process.env, HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_RUNTIME_DIR: home, DISPLAY: '' },
    })
    rmSync(home, { recursive: true, force: true })
    process.exit(res.status ?? 1)
  }
}

const { startLocalProvider } = await import('./local-provider.mjs')
const idp = await startLocalProvider({ deviceInterval: 0.05 })
const dir = mkdtempSync(join(tmpdir(), 'jit-bench-'))
const store = process.env.DBUS_SESSION_BUS_ADDRESS || process.platform !== 'linux' ? 'keychain' : 'file'
const env = { ...process.env, JIT_CONFIG_DIR: dir, JIT_PROFILE: 'bench', JIT_STORE_KEY: 'bench-passphrase' }
delete env.CI

/** Runs jit asynchronously: the provider lives in this process, so a blocking spawn would starve it. */
function jitAsync(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`jit ${args.join(' ')} failed (${code}): ${stderr}`))))
  })
}

async function login() {
  const child = spawn(process.execPath, [bin, 'login', '--json', '--no-browser', '--ttl', '1h'], { env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  let approving
  child.stderr.on('data', (c) => {
    stderr += c
    const line = stderr.split('\n').find((l) => l.includes('"device_authorization"'))
    if (line && !approving) approving = idp.approveDevice(JSON.parse(line).verification_uri_complete)
  })
  const code = await new Promise((r) => child.on('close', r))
  await approving
  if (code !== 0) throw new Error(`login failed: ${stderr}`)
}

/** Wall time (ms) and peak RSS (KiB) of one run, using GNU time when present for the RSS. A cache hit never talks
 * to the provider, so a blocking spawn is fine (and keeps this process's own noise out of the timing). */
function measure(argv) {
  const gnuTime = existsSync('/usr/bin/time')
  const cmd = gnuTime ? '/usr/bin/time' : argv[0]
  const args = gnuTime ? ['-f', '%M', ...argv] : argv.slice(1)
  const start = process.hrtime.bigint()
  const res = spawnSync(cmd, args, { env, encoding: 'utf8' })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (res.status !== 0) throw new Error(`${argv.join(' ')} failed: ${res.stderr}`)
  const rss = gnuTime ? Number(res.stderr.trim().split('\n').pop()) : NaN
  return { ms, rss }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

try {
  await jitAsync(['config', 'init', 'bench', '--issuer', idp.issuer, '--client-id', idp.clientId, '--scope', 'db:read', '--insecure-loopback', '--store', store])
  await login()
  const token = (await jitAsync(['token'])).trim()
  if (!token) throw new Error('no token after login')

  // Warm the file cache once for both.
  measure([process.execPath, '-e', '0'])
  measure([process.execPath, bin, 'token'])

  const bare = []
  const hit = []
  for (let i = 0; i < RUNS; i += 1) {
    const pair = i % 2 === 0 ? ['bare', 'hit'] : ['hit', 'bare']
    for (const which of pair) {
      if (which === 'bare') bare.push(measure([process.execPath, '-e', '0']))
      else hit.push(measure([process.execPath, bin, 'token']))
    }
  }

  const traceFile = join(dir, 'imports.txt')
  spawnSync(process.execPath, ['--import', join(root, 'scripts', 'trace-imports.mjs'), bin, 'token'], {
    env: { ...env, JIT_TRACE_IMPORTS_FILE: traceFile },
    stdio: 'ignore',
  })
  const loaded = existsSync(traceFile) ? readFileSync(traceFile, 'utf8') : ''
  const heavy = ['openid-client', 'oauth4webapi', 'jose', '/open/', 'uqr', '/conf/', 'ajv'].filter((m) => loaded.includes(`node_modules${m.startsWith('/') ? m : `/${m}/`}`))

  const mBare = median(bare.map((r) => r.ms))
  const mHit = median(hit.map((r) => r.ms))
  const rssBare = Math.max(...bare.map((r) => r.rss))
  const rssHit = Math.max(...hit.map((r) => r.rss))
  const lines = [
    `jit token, cache hit, store=${store}, ${RUNS} paired runs (node ${process.version}, ${process.platform})`,
    `  node -e 0        median ${mBare.toFixed(1)} ms   peak RSS ${Number.isNaN(rssBare) ? 'n/a' : `${(rssBare / 1024).toFixed(1)} MiB`}`,
    `  jit token (hit)  median ${mHit.toFixed(1)} ms   peak RSS ${Number.isNaN(rssHit) ? 'n/a' : `${(rssHit / 1024).toFixed(1)} MiB`}`,
    `  ratio            ${(mHit / mBare).toFixed(2)}x node startup (+${(mHit - mBare).toFixed(1)} ms)`,
    `  modules loaded   ${loaded.split('\n').filter(Boolean).length}; heavy ones on the hit path: ${heavy.length ? heavy.join(', ') : 'none (no openid-client)'}`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  if (heavy.includes('openid-client')) process.exitCode = 1
} finally {
  await idp.close()
  rmSync(dir, { recursive: true, force: true })
}
