#!/usr/bin/env node
/**
 * `npm run demo`: the whole main job of jit against an embedded OpenID provider on 127.0.0.1, through the real CLI.
 *
 *   config init → login (device flow, a scripted person approves) → status → token → refusal after the deadline
 *
 * Options: --interactive (you approve the login yourself in a browser at the local provider; any user name works),
 *          --keep (leave the temp config folder for inspection).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { startLocalProvider } from './local-provider.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = join(root, 'bin', 'jit.js')
const interactive = process.argv.includes('--interactive')
const keep = process.argv.includes('--keep')
const TTL_SECONDS = 12

const color = process.stderr.isTTY && !process.env.NO_COLOR
const bold = (s) => (color ? `\u001b[1m${s}\u001b[22m` : s)
const dim = (s) => (color ? `\u001b[2m${s}\u001b[22m` : s)
const say = (s = '') => process.stderr.write(`${s}\n`)
const step = (s) => say(`\n${bold(`▶ ${s}`)}`)

const idp = await startLocalProvider({ deviceInterval: 1 })
const dir = mkdtempSync(join(tmpdir(), 'jit-demo-'))
const env = { ...process.env, JIT_CONFIG_DIR: dir, JIT_PROFILE: 'demo' }
delete env.CI // the demo plays a person at a terminal
let failed = false

/** Runs the real CLI; stderr is shown (indented), stdout returned. */
function jit(args, opts = {}) {
  say(dim(`$ jit ${args.join(' ')}`))
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...env, ...opts.env },
      stdio: [opts.inheritStdin ? 'inherit' : 'ignore', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    let partial = ''
    child.stderr?.on('data', (c) => {
      stderr += c
      opts.onStderr?.(stderr)
      if (opts.json) return
      const lines = (partial + c).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) process.stderr.write(`  ${line}\n`)
    })
    child.on('error', reject)
    child.on('close', (code) => {
      if (partial) process.stderr.write(`  ${partial}\n`)
      resolve({ code, stdout, stderr })
    })
  })
}

function expectCode(res, code, what) {
  if (res.code !== code) {
    failed = true
    throw new Error(`${what}: expected exit ${code}, got ${res.code}\n${res.stderr}`)
  }
}

/** Picks the OS keychain when one answers, else the encrypted file store; says which. */
async function chooseStore() {
  try {
    const { keychainStore } = await import(join(root, 'dist', 'store', 'keychain-store.js'))
    await keychainStore({ timeoutMs: 2000 }).probe()
    return { store: 'keychain', why: 'the OS keychain answered' }
  } catch (err) {
    env.JIT_STORE_KEY = randomBytes(16).toString('hex')
    return { store: 'file', why: `no keychain here (${String(err.message ?? err).split('\n')[0]}), so the encrypted file store` }
  }
}

try {
  say(bold('jit demo') + dim(`  provider ${idp.issuer}, config ${dir}`))
  const { store, why } = await chooseStore()
  say(`secrets go to: ${bold(store)} — ${why}`)

  step('1. Configure a profile (discovery is checked first)')
  expectCode(
    await jit(['config', 'init', 'demo', '--issuer', idp.issuer, '--client-id', idp.clientId, '--scope', 'db:read',
      '--max-ttl', '1h', '--ttl-param', 'ttl', '--store', store, '--insecure-loopback']),
    0, 'config init')
  // A short leeway so the demo can show a 12-second credential being served and then refused.
  expectCode(await jit(['config', 'set', 'demo', 'leeway', '1s']), 0, 'config set leeway')

  step(`2. Log in with the device flow, asking for db:read for ${TTL_SECONDS}s`)
  let login
  if (interactive) {
    say(dim('   approve it in your browser: any user name and password work at the local provider'))
    login = await jit(['login', '--flow', 'device', '--scope', 'db:read', '--ttl', `${TTL_SECONDS}s`], { inheritStdin: true, inheritStderr: true })
  } else {
    let approving
    login = await jit(['login', '--flow', 'device', '--scope', 'db:read', '--ttl', `${TTL_SECONDS}s`, '--json', '--no-browser'], {
      json: true,
      onStderr: (text) => {
        for (const line of text.split('\n')) {
          if (!line.startsWith('{')) continue
          const event = JSON.parse(line)
          if (event.event === 'device_authorization' && !approving) {
            say(`  jit shows: open ${bold(event.verification_uri)} and enter ${bold(event.user_code)}`)
            say(dim('  (the demo now plays the person: it opens that page, signs in as "alice" and approves)'))
            approving = idp.approveDevice(event.verification_uri_complete, { accountId: 'alice' })
          }
          if (event.event === 'logged_in') say(`  jit: logged in; deadline ${event.deadline} (set by ${event.capped_by}), stored in ${event.store}`)
        }
      },
    })
    await approving
  }
  expectCode(login, 0, 'login')

  step('3. See what is cached')
  expectCode(await jit(['status']), 0, 'status')

  step('4. Get the token, as a script would')
  const token = await jit(['token'])
  expectCode(token, 0, 'token')
  const [, payload] = token.stdout.trim().split('.')
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
  say(`  stdout: a ${token.stdout.trim().length}-character JWT (not shown); aud=${claims.aud} scope="${claims.scope}" lives ${claims.exp - claims.iat}s`)

  step(`5. Wait for the deadline (${TTL_SECONDS}s), then ask again`)
  const status = JSON.parse((await jit(['status', '--json'])).stdout)
  const wait = Date.parse(status.credentials[0].expires_at) - Date.now() + 250
  if (process.stderr.isTTY) {
    for (let left = Math.ceil(wait / 1000); left > 0; left -= 1) {
      process.stderr.write(`\r  ${left}s left… `)
      await new Promise((r) => setTimeout(r, Math.min(1000, wait)))
    }
    process.stderr.write('\r\u001b[2K')
  } else {
    say(`  waiting ${Math.ceil(wait / 1000)}s…`)
    await new Promise((r) => setTimeout(r, Math.max(0, wait)))
  }
  const late = await jit(['token'])
  expectCode(late, 4, 'token after the deadline')
  say(`  exit ${late.code}: refused, and deleted from the ${store === 'keychain' ? 'keychain' : 'file store'}`)
  const after = JSON.parse((await jit(['status', '--json'])).stdout)
  if (after.credentials.length !== 0) {
    failed = true
    throw new Error('the expired credential is still listed')
  }

  step('6. Clean up')
  expectCode(await jit(['logout', '--profile', 'demo']), 0, 'logout')
  say(`\n${bold('demo finished:')} login → ${store === 'keychain' ? 'OS keychain' : 'encrypted file store'} → token → refused after ${TTL_SECONDS}s, all through the real CLI`)
} catch (err) {
  failed = true
  say(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`)
} finally {
  await idp.close()
  if (keep) say(dim(`config kept in ${dir}`))
  else rmSync(dir, { recursive: true, force: true })
}
process.exitCode = failed ? 1 : 0
