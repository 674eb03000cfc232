#!/usr/bin/env node
/**
 * A real browser for `$BROWSER` in end-to-end tests: `node test/support/chromium-browser.mjs <url>`.
 *
 * Opens `<url>` in headless Chromium (playwright-core), signs in at oidc-provider's dev interaction pages (login, then
 * consent) or, with `JIT_TEST_BROWSER_DENY=1`, cancels there, and follows the provider's redirect until the browser
 * leaves the provider's origin (the origin of `<url>`: with PAR the URL holds only `request_uri`, so the redirect_uri
 * is not known up front). It then waits for that page to load and reports it.
 *
 * Environment:
 * - `JIT_TEST_CHROMIUM`: the Chromium executable (default `/usr/bin/chromium`)
 * - `JIT_TEST_LOGIN`: the login to type (default `alice`; the dev pages accept any login and password)
 * - `JIT_TEST_BROWSER_DENY=1`: cancel the interaction, so the provider redirects with `error=access_denied`
 * - `JIT_TEST_BROWSER_REPORT`: a file to write a one-line JSON report to:
 *   `{ "final_url", "status", "text", "ok": true }` or `{ "ok": false, "error" }`
 * - `JIT_TEST_BROWSER_TIMEOUT_MS`: overall deadline (default 60000)
 *
 * Exit code 0 when a page outside the provider loaded, 1 otherwise. Only loopback hosts are reachable (every other
 * request is aborted: the dev pages import a web font). Nothing printed ever holds a URL's query or fragment: the
 * final URL carries the authorization code.
 */
import { renameSync, writeFileSync } from 'node:fs'
import { chromium } from 'playwright-core'

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
]
const MAX_PROVIDER_PAGES = 10
const TEXT_LIMIT = 500
const CLOSE_GRACE_MS = 5000

/** @type {import('playwright-core').Browser | undefined} */
let browser

/** @param {string} hostname */
function isLoopbackHost(hostname) {
  const host = hostname.toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost')) return true
  if (host === '[::1]' || host === '::1') return true
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** @param {string} url */
function isLoopbackUrl(url) {
  try {
    return isLoopbackHost(new URL(url).hostname)
  } catch {
    return false
  }
}

/** `origin + path` of a URL: no query, no fragment. */
function withoutQuery(/** @type {string} */ url) {
  try {
    const u = new URL(url)
    return u.protocol === 'http:' || u.protocol === 'https:' ? `${u.origin}${u.pathname}` : `${u.protocol}${u.pathname}`
  } catch {
    return '(unparsable URL)'
  }
}

/** Removes the query and fragment of every URL in `text`, and any stray `code=` value. */
function redact(/** @type {string} */ text) {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s?#"'<>]*)[?#][^\s"'<>]*/gi, '$1?[redacted]')
    .replace(/\b(code|state|request_uri)=[^&\s"'<>]+/gi, '$1=[redacted]')
}

function log(/** @type {string} */ message) {
  process.stderr.write(`chromium-browser: ${redact(message)}\n`)
}

function writeReport(/** @type {Record<string, unknown>} */ report) {
  const file = process.env.JIT_TEST_BROWSER_REPORT
  if (!file) return
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(report)}\n`, { mode: 0o600 })
  renameSync(tmp, file)
}

/** The visible text of the page, whitespace collapsed. */
async function visibleText(/** @type {import('playwright-core').Page} */ page) {
  const text = await page.locator('body').innerText({ timeout: 5000 }).catch(() => '')
  return text.replace(/\s+/g, ' ').trim()
}

/**
 * Acts on one provider page: logs in, consents (submits the visible form), or cancels. Resolves once the main frame
 * has navigated away and the next page has loaded.
 * @param {import('playwright-core').Page} page
 * @param {{ deny: boolean, login: string }} opts
 */
async function actOn(page, { deny, login }) {
  const here = withoutQuery(page.url())
  /** @type {import('playwright-core').Locator | undefined} */
  let target
  let fill = false

  if (deny) {
    // The dev layout's "[ Cancel ]" link (GET .../interaction/:uid/abort); the device confirm page has an abort button.
    const cancel = page
      .locator('a[href$="/abort"]')
      .or(page.getByRole('link', { name: /cancel|abort/i }))
      .or(page.locator('button[name="abort"]'))
      .filter({ visible: true })
      .first()
    if ((await cancel.count()) > 0) target = cancel
  } else {
    const loginForm = page.locator('form').filter({ has: page.locator('input[name="password"]') }).filter({ visible: true }).first()
    if ((await loginForm.count()) > 0) {
      await loginForm.locator('input[name="login"]').fill(login)
      await loginForm.locator('input[name="password"]').fill('local-test-password')
      target = loginForm.locator('[type="submit"]').first()
      fill = true
    } else {
      // Consent ("Continue", autofocus) and any other interaction form; never the device page's abort button.
      const submit = page
        .locator('form button[type="submit"][autofocus], form button[type="submit"]:not([name="abort"]), form input[type="submit"]')
        .filter({ visible: true })
        .first()
      if ((await submit.count()) > 0) target = submit
    }
  }

  if (!target) {
    const text = (await visibleText(page)).slice(0, 200)
    throw new Error(`no ${deny ? 'cancel link' : 'interaction form'} on the provider page ${here}: ${text}`)
  }
  log(`${here}: ${deny ? 'cancel' : fill ? 'login' : 'submit'}`)
  const navigated = page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() })
  await target.click()
  await navigated
  await page.waitForLoadState('load')
}

/**
 * @param {string} url
 * @param {{ deny: boolean, login: string, timeoutMs: number }} opts
 */
async function drive(url, { deny, login, timeoutMs }) {
  const start = new URL(url)
  if (start.protocol !== 'http:' && start.protocol !== 'https:') throw new Error(`not an http(s) URL: ${start.protocol}`)
  const providerOrigin = start.origin

  browser = await chromium.launch({
    executablePath: process.env.JIT_TEST_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: timeoutMs,
  })
  const context = await browser.newContext()
  await context.route('**/*', (route) => (isLoopbackUrl(route.request().url()) ? route.continue() : route.abort()))
  const page = await context.newPage()
  page.setDefaultTimeout(timeoutMs)
  page.setDefaultNavigationTimeout(timeoutMs)

  /** @param {import('playwright-core').Request} request */
  const isMainNavigation = (request) => {
    try {
      return request.isNavigationRequest() && request.frame() === page.mainFrame()
    } catch {
      return false // service worker requests have no frame
    }
  }
  /** @type {{ url: string, status: number } | undefined} */
  let lastDocument
  /** @type {{ url: string, error: string } | undefined} */
  let navigationFailure
  page.on('response', (response) => {
    if (!isMainNavigation(response.request())) return
    const status = response.status()
    if (status >= 300 && status < 400 && response.headers().location) return // a redirect hop
    lastDocument = { url: response.url(), status }
  })
  page.on('requestfailed', (request) => {
    if (isMainNavigation(request)) navigationFailure = { url: request.url(), error: request.failure()?.errorText ?? 'failed' }
  })
  const failure = () =>
    navigationFailure
      ? `could not load ${withoutQuery(navigationFailure.url)}${isLoopbackUrl(navigationFailure.url) ? '' : ' (not a loopback host: blocked)'}: ${navigationFailure.error}`
      : `the browser showed an error page instead of ${withoutQuery(lastDocument?.url ?? url)}`

  try {
    await page.goto(url, { waitUntil: 'load' })
  } catch (err) {
    const message = navigationFailure ? failure() : `opening ${withoutQuery(url)}: ${err instanceof Error ? err.message : String(err)}`
    throw new Error(message, { cause: err })
  }

  for (let pages = 0; ; pages += 1) {
    const here = new URL(page.url())
    if (here.protocol !== 'http:' && here.protocol !== 'https:') {
      // chrome-error://chromewebdata/: give requestfailed a moment to arrive for a better message
      if (!navigationFailure) await new Promise((resolve) => setTimeout(resolve, 100))
      throw new Error(failure())
    }
    if (here.origin !== providerOrigin) break
    if (pages >= MAX_PROVIDER_PAGES) throw new Error(`still at the provider after ${MAX_PROVIDER_PAGES} pages (${withoutQuery(here.href)})`)
    await actOn(page, { deny, login })
  }

  await page.waitForLoadState('load')
  const finalUrl = page.url()
  const text = (await visibleText(page)).slice(0, TEXT_LIMIT)
  const status = lastDocument && withoutQuery(lastDocument.url) === withoutQuery(finalUrl) ? lastDocument.status : (lastDocument?.status ?? 0)
  return { final_url: withoutQuery(finalUrl), status, text }
}

async function closeBrowser() {
  const b = browser
  browser = undefined
  if (!b) return
  await Promise.race([b.close().catch(() => {}), new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS))])
}

async function main() {
  const url = process.argv[process.argv.length - 1]
  if (process.argv.length < 3 || !url) {
    log('usage: node chromium-browser.mjs <url>')
    writeReport({ ok: false, error: 'no URL given' })
    return 1
  }
  const timeoutMs = Number(process.env.JIT_TEST_BROWSER_TIMEOUT_MS) > 0 ? Number(process.env.JIT_TEST_BROWSER_TIMEOUT_MS) : 60_000
  const deny = process.env.JIT_TEST_BROWSER_DENY === '1'
  const login = process.env.JIT_TEST_LOGIN ?? 'alice'
  const started = performance.now()

  /** @type {(err: Error) => void} */
  let stop = () => {}
  const stopped = new Promise((_resolve, reject) => {
    stop = reject
  })
  stopped.catch(() => {}) // raced below; a late signal must not become an unhandled rejection
  const timer = setTimeout(() => stop(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
  /** @param {NodeJS.Signals} signal */
  const onSignal = (signal) => stop(new Error(`stopped by ${signal}`))
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)

  try {
    const result = await Promise.race([drive(url, { deny, login, timeoutMs }), stopped])
    writeReport({ ...result, ok: true })
    log(`${result.status} at ${result.final_url} after ${((performance.now() - started) / 1000).toFixed(1)} s`)
    return 0
  } catch (err) {
    const error = redact(err instanceof Error ? err.message : String(err)).split('\n')[0]
    writeReport({ ok: false, error })
    log(`failed after ${((performance.now() - started) / 1000).toFixed(1)} s: ${error}`)
    return 1
  } finally {
    clearTimeout(timer)
    await closeBrowser()
  }
}

process.exit(await main())
