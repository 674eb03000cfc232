import { createServer, type Server } from 'node:net'
import { networkInterfaces } from 'node:os'
import { connect } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import type { Browser } from '../../src/core/ports.js'
import { events, jit, waitForEvent } from '../support/cli.js'
import { testDeps, type TestDeps } from '../support/deps.js'

let idp: LocalProvider
let deps: TestDeps

beforeAll(async () => {
  idp = await startLocalProvider()
})
afterAll(async () => {
  await idp.close()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`--- stderr ---\n${deps.io.stderr()}`)
  deps.cleanup()
})

/** What the scripted browser saw when it landed on jit's callback. */
interface Landing {
  status: number
  text: string
}

/** A scripted browser: signs in at the provider over HTTP, then follows the redirect to jit's listener. */
function scriptedBrowser(opts: { deny?: boolean; tamper?: (location: URL) => URL; before?: (location: URL) => Promise<void> } = {}) {
  const landings: Landing[] = []
  const browser: Browser = {
    open: async (url) => {
      // Like a real browser, it runs on its own: jit must not wait for it to return.
      void (async () => {
        let location = new URL(await idp.authorize(url.href, { deny: opts.deny ?? false }))
        if (opts.tamper) location = opts.tamper(location)
        await opts.before?.(location)
        try {
          const res = await fetch(location)
          landings.push({ status: res.status, text: await res.text() })
        } catch (err) {
          landings.push({ status: -1, text: String(err) })
        }
      })()
    },
  }
  return { browser, landings }
}

async function setup(browser?: Browser, extra: string[] = []): Promise<TestDeps> {
  deps = testDeps({ ...(browser ? { browser } : {}), env: { DISPLAY: ':99' } })
  const init = await jit(deps, 'config', 'init', 'web', '--issuer', idp.issuer, '--client-id', 'jit-cli', '--scope', 'db:read', '--insecure-loopback', '--ttl-param', 'ttl', ...extra)
  expect(init.code, init.stderr).toBe(0)
  return deps
}

describe('jit login --flow pkce against a real oidc-provider', () => {
  it('signs in through the browser, with PAR, PKCE and a loopback redirect on 127.0.0.1', async () => {
    const { browser, landings } = scriptedBrowser()
    const d = await setup(browser)
    const res = await jit(d, 'login', '--json', '--flow', 'pkce', '--ttl', '10m')
    expect(res.code, res.stderr).toBe(0)

    const evs = events(res.stderr)
    expect(evs.find((e) => e.event === 'login_started')).toMatchObject({ flow: 'pkce', flow_reason: '--flow pkce' })
    const request = evs.find((e) => e.event === 'authorization_request')!
    expect(String(request.redirect_uri)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
    // The provider offers PAR, so the browser URL carries only a request_uri: no PKCE challenge, state or nonce in it
    const url = new URL(String(request.url))
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/)
    expect(url.searchParams.has('code_challenge')).toBe(false)
    expect(evs.map((e) => e.event)).toContain('browser_opened')
    expect(evs.find((e) => e.event === 'logged_in')).toMatchObject({ profile: 'web', capped_by: 'ttl' })

    await expect.poll(() => landings.length).toBe(1)
    expect(landings[0]!.status).toBe(200)
    expect(landings[0]!.text).toContain('Signed in')
    const token = await jit(d, 'token')
    expect(token.code).toBe(0)
    expect(landings[0]!.text).not.toContain(token.stdout.trim())

    // The listener is gone once the login is over
    const port = Number(new URL(String(request.redirect_uri)).port)
    await expect(fetch(`http://127.0.0.1:${port}/callback?code=x&state=y`)).rejects.toThrow()
  })

  it('defaults to the browser flow on a desktop (--flow auto) and to the device flow over SSH', async () => {
    const { browser } = scriptedBrowser()
    const d = await setup(browser)
    const res = await jit(d, 'login', '--json')
    expect(res.code, res.stderr).toBe(0)
    expect(events(res.stderr).find((e) => e.event === 'login_started')).toMatchObject({ flow: 'pkce', flow_reason: 'a graphical display' })

    const ssh = { ...d, env: { ...d.env, SSH_CONNECTION: '10.1.1.1 5 10.1.1.2 22' } } as TestDeps
    const run = jit(ssh, 'login', '--json')
    const device = await waitForEvent(() => d.io.stderr().split('"flow":"device"').slice(1).join(''), 'device_authorization')
    await idp.approveDevice(String(device.verification_uri_complete))
    const sshRes = await run
    expect(sshRes.code, sshRes.stderr).toBe(0)
    expect(events(sshRes.stderr).find((e) => e.event === 'login_started')).toMatchObject({ flow: 'device', flow_reason: 'an SSH session: the browser is on another machine' })
  })

  it('error=access_denied on the callback ends with exit 5 and the provider\'s description', async () => {
    const { browser, landings } = scriptedBrowser({ deny: true })
    const d = await setup(browser)
    const res = await jit(d, 'login', '--json', '--flow', 'pkce')
    expect(res.code).toBe(5)
    expect(res.stderr).toMatch(/jit: the login was refused \(access_denied: .+\)/)
    expect(d.keychainStore.entries.size).toBe(0)
    await expect.poll(() => landings.length).toBe(1)
    expect(landings[0]!.text).toContain('Sign-in failed')
  })

  it('a callback with a wrong state is refused and logged, and the right one still completes the login', async () => {
    const wrong: Landing[] = []
    const { browser, landings } = scriptedBrowser({
      before: async (location) => {
        const forged = new URL(location)
        forged.searchParams.set('state', 'forged')
        const r1 = await fetch(forged)
        wrong.push({ status: r1.status, text: await r1.text() })
        const noState = new URL(location)
        noState.searchParams.delete('state')
        const r2 = await fetch(noState)
        wrong.push({ status: r2.status, text: await r2.text() })
      },
    })
    const d = await setup(browser)
    const res = await jit(d, 'login', '--json', '--flow', 'pkce')
    expect(res.code, res.stderr).toBe(0)
    expect(wrong.map((w) => w.status)).toEqual([400, 400])
    const warnings = events(res.stderr).filter((e) => e.event === 'warning').map((e) => e.message)
    expect(warnings).toEqual(['refused a callback: a callback with a wrong state', 'refused a callback: a callback without state'])
    await expect.poll(() => landings.length).toBe(1)
    expect(landings[0]!.status).toBe(200)
  })

  it.each([
    ['a wrong iss (mix-up attack)', (u: URL) => (u.searchParams.set('iss', 'https://evil.example'), u), /iss/],
    ['no code', (u: URL) => (u.searchParams.delete('code'), u), /code/],
  ])('a callback with %s is refused: exit 1, nothing stored', async (_name, tamper, message) => {
    const { browser, landings } = scriptedBrowser({ tamper })
    const d = await setup(browser)
    const res = await jit(d, 'login', '--json', '--flow', 'pkce')
    expect(res.code).toBe(1)
    expect(res.stderr.split('\n').find((l) => l.startsWith('jit: '))).toMatch(message)
    expect(d.keychainStore.entries.size).toBe(0)
    await expect.poll(() => landings.length).toBe(1)
    expect(landings[0]!.status).toBe(400)
  })

  it('a second callback is refused', async () => {
    const seconds: number[] = []
    const { browser, landings } = scriptedBrowser({
      before: async (location) => {
        // Two tabs deliver the same redirect at once: only one may be taken
        const [a, b] = await Promise.allSettled([fetch(location), fetch(location)])
        for (const r of [a, b]) seconds.push(r.status === 'fulfilled' ? r.value.status : -1)
      },
    })
    const d = await setup(browser)
    const res = await jit(d, 'login', '--json', '--flow', 'pkce')
    expect(res.code, res.stderr).toBe(0)
    await expect.poll(() => landings.length).toBe(1)
    // one of the two got the real answer, the other (and the third, after close) did not
    expect(seconds.filter((s) => s === 200)).toHaveLength(1)
    expect(landings[0]!.status).not.toBe(200)
  })

  it('a port in use is a clear error naming the port', async () => {
    const blocker: Server = createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    const port = (blocker.address() as { port: number }).port
    try {
      const d = await setup()
      const res = await jit(d, 'login', '--json', '--flow', 'pkce', '--redirect-port', String(port))
      expect(res.code).toBe(1)
      expect(res.stderr).toContain(`jit: cannot listen on 127.0.0.1:${port} for the login callback: the port is in use`)
    } finally {
      blocker.close()
    }
  })

  it('a fixed --redirect-port and --redirect-host localhost go into the redirect URI', async () => {
    const { browser } = scriptedBrowser()
    const d = await setup(browser)
    const free: Server = createServer()
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r))
    const port = (free.address() as { port: number }).port
    await new Promise<void>((r) => free.close(() => r()))
    const res = await jit(d, 'login', '--json', '--flow', 'pkce', '--redirect-port', String(port))
    expect(res.code, res.stderr).toBe(0)
    expect(events(res.stderr).find((e) => e.event === 'authorization_request')!.redirect_uri).toBe(`http://127.0.0.1:${port}/callback`)
    // oidc-provider only accepts 127.0.0.1 for native clients, so it refuses localhost: the name reached it
    const lh = await jit(d, 'login', '--json', '--flow', 'pkce', '--redirect-host', 'localhost')
    expect(lh.code).toBe(1)
    expect(lh.stderr).toMatch(/redirect_uri/)
  })

  it('gives up after --timeout with a clear message, and closes the listener', async () => {
    const d = await setup({ open: async () => {} })
    const res = await jit(d, 'login', '--json', '--flow', 'pkce', '--timeout', '1s')
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('jit: the login did not complete within 1s')
    const uri = String(events(res.stderr).find((e) => e.event === 'authorization_request')!.redirect_uri)
    await expect(fetch(uri)).rejects.toThrow()
  })

  it('--no-browser prints the URL and opens nothing', async () => {
    const d = await setup()
    const run = jit(d, 'login', '--json', '--flow', 'pkce', '--no-browser', '--timeout', '20s')
    const request = await waitForEvent(() => d.io.stderr(), 'authorization_request')
    expect(request.will_open).toBe(false)
    expect(d.opened).toEqual([])
    // the person opens it by hand
    const location = await idp.authorize(String(request.url))
    expect((await fetch(location)).status).toBe(200)
    expect((await run).code).toBe(0)
  })
})

describe('the loopback listener', () => {
  it('cannot be reached on a non-loopback address of this machine', async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address
    if (!external) {
      console.warn('skipping: this machine has no non-loopback IPv4 address')
      return
    }
    let probe: string | undefined
    const browser: Browser = {
      open: async (url) => {
        void (async () => {
          const location = new URL(await idp.authorize(url.href))
          probe = await new Promise<string>((resolve) => {
            const socket = connect({ host: external, port: Number(location.port) })
            socket.once('connect', () => {
              socket.destroy()
              resolve('connected')
            })
            socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
          })
          await fetch(location)
        })()
      },
    }
    const d = await setup(browser)
    const res = await jit(d, 'login', '--json', '--flow', 'pkce')
    expect(res.code, res.stderr).toBe(0)
    expect(probe).toBe('ECONNREFUSED')
  })
})
