import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { CHROMIUM_DRIVER, chromiumAvailability } from '../support/chromium.js'
import { componentGate, describeWithComponent } from '../support/components.js'

/**
 * The `$BROWSER` driver for end-to-end tests (test/support/chromium-browser.mjs), proved against the local provider
 * without jit: a hand-built authorization URL, a tiny callback server, real Chromium.
 */

const DRIVER = CHROMIUM_DRIVER
const TIMEOUT_MS = 60_000

const gate = componentGate('Chromium with playwright-core', chromiumAvailability)

interface BrowserReport {
  ok: boolean
  final_url?: string
  status?: number
  text?: string
  error?: string
}

interface BrowserRun {
  exitCode: number | null
  output: string
  ms: number
  report: BrowserReport
}

interface CallbackServer {
  readonly server: Server
  readonly redirectUri: string
  /** The query of each `/callback` request, in order. */
  readonly hits: URLSearchParams[]
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return (server.address() as AddressInfo).port
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

async function startCallbackServer(): Promise<CallbackServer> {
  const hits: URLSearchParams[] = []
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname !== '/callback') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    hits.push(url.searchParams)
    const error = url.searchParams.get('error')
    const message = error ? `login failed: ${error}` : 'login worked'
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end(`<!doctype html><html><head><title>jit</title></head><body><p>${message}</p></body></html>`)
  })
  const port = await listen(server)
  return { server, redirectUri: `http://127.0.0.1:${port}/callback`, hits }
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  const port = await listen(server)
  await close(server)
  return port
}

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

function authorizationUrl(endpoint: string, redirectUri: string, challenge: string): string {
  const url = new URL(endpoint)
  url.search = new URLSearchParams({
    client_id: 'jit-cli',
    response_type: 'code',
    scope: 'openid',
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'xyz',
    nonce: 'n1',
  }).toString()
  return url.href
}

/** Runs the driver as jit would (`$BROWSER <url>`), with pipes so the test can check what it prints. */
async function runBrowser(url: string, reportFile: string, env: Record<string, string> = {}): Promise<BrowserRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, JIT_TEST_BROWSER_REPORT: reportFile, ...env }
  if (!('JIT_TEST_BROWSER_DENY' in env)) delete childEnv.JIT_TEST_BROWSER_DENY
  const started = performance.now()
  const child = spawn(process.execPath, [DRIVER, url], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve(code))
  })
  const ms = performance.now() - started
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as BrowserReport
  return { exitCode, output, ms, report }
}

const timing = (what: string, run: BrowserRun): void =>
  console.info(`[chromium timing] ${what}: ${run.ms.toFixed(0)} ms (exit ${run.exitCode})`)

describeWithComponent('chromium-browser.mjs, a real $BROWSER', gate, () => {
  let op: LocalProvider
  let authorizationEndpoint: string
  let tokenEndpoint: string
  let callback: CallbackServer
  let dir: string
  let reportFile: string
  let runs = 0

  beforeAll(async () => {
    op = await startLocalProvider()
    const discovery = (await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>
    authorizationEndpoint = discovery.authorization_endpoint
    tokenEndpoint = discovery.token_endpoint
    callback = await startCallbackServer()
    dir = mkdtempSync(join(tmpdir(), 'jit-chromium-'))
  })

  afterAll(async () => {
    if (callback) await close(callback.server)
    await op?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  beforeEach(() => {
    callback.hits.length = 0
    runs += 1
    reportFile = join(dir, `report-${runs}.json`)
  })

  it('logs in and consents, landing on the loopback callback with a code that redeems', { timeout: TIMEOUT_MS }, async () => {
    const { verifier, challenge } = pkcePair()
    const run = await runBrowser(authorizationUrl(authorizationEndpoint, callback.redirectUri, challenge), reportFile)
    timing('login + consent (first launch)', run)

    expect(run.exitCode, run.output).toBe(0)
    expect(callback.hits).toHaveLength(1)
    const query = callback.hits[0]
    const code = query.get('code')
    expect(code).toBeTruthy()
    expect(query.get('state')).toBe('xyz')
    expect(query.get('iss')).toBe(op.issuer)
    expect(query.get('error')).toBeNull()

    expect(run.report).toEqual({ ok: true, final_url: callback.redirectUri, status: 200, text: 'login worked' })
    expect(run.output).not.toContain(code)

    // The code is real: it redeems with the PKCE verifier.
    const res = await fetch(tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: 'jit-cli',
        code: code ?? '',
        redirect_uri: callback.redirectUri,
        code_verifier: verifier,
      }),
    })
    const tokens = (await res.json()) as Record<string, unknown>
    expect(res.status, JSON.stringify(tokens)).toBe(200)
    expect(tokens.id_token).toEqual(expect.any(String))
  })

  it('with JIT_TEST_BROWSER_DENY=1 cancels, so the provider redirects with access_denied', { timeout: TIMEOUT_MS }, async () => {
    const { challenge } = pkcePair()
    const run = await runBrowser(authorizationUrl(authorizationEndpoint, callback.redirectUri, challenge), reportFile, {
      JIT_TEST_BROWSER_DENY: '1',
    })
    timing('cancel', run)

    expect(run.exitCode, run.output).toBe(0)
    expect(callback.hits).toHaveLength(1)
    const query = callback.hits[0]
    expect(query.get('error')).toBe('access_denied')
    expect(query.get('code')).toBeNull()
    expect(query.get('state')).toBe('xyz')
    expect(query.get('iss')).toBe(op.issuer)
    expect(run.report).toEqual({ ok: true, final_url: callback.redirectUri, status: 200, text: 'login failed: access_denied' })
  })

  it('fails with exit 1 when the redirect target does not answer, without printing the code', { timeout: TIMEOUT_MS }, async () => {
    const port = await closedPort()
    const redirectUri = `http://127.0.0.1:${port}/callback`
    const { challenge } = pkcePair()
    const run = await runBrowser(authorizationUrl(authorizationEndpoint, redirectUri, challenge), reportFile)
    timing('unreachable callback', run)

    expect(run.exitCode, run.output).toBe(1)
    expect(run.report.ok).toBe(false)
    expect(run.report.error).toContain(`could not load ${redirectUri}`)
    expect(run.report.error).toMatch(/ERR_CONNECTION_REFUSED/)
    for (const printed of [run.output, JSON.stringify(run.report)]) {
      expect(printed).not.toMatch(/[?&]code=(?!\[redacted\])/)
      expect(printed).not.toMatch(/code=[A-Za-z0-9_-]{20,}/)
    }
  })
})
