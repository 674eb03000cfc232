/**
 * An embedded OpenID provider (oidc-provider 8) on 127.0.0.1 for `npm run demo`, the benchmarks and the integration and
 * e2e tests, plus a scripted user agent that logs in and consents over plain HTTP, driving the provider's own dev
 * pages (which stay usable by a person in a browser).
 *
 * Not for production: in-memory storage, any login and password are accepted.
 */
import { createServer } from 'node:http'
import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import Provider from 'oidc-provider'
import { exportJWK, generateKeyPair } from 'jose'

/** The resource indicator (and JWT `aud`) of the demo database API. */
export const DB_RESOURCE = 'urn:jit:db'
/** The scopes the demo database API knows. */
export const DB_SCOPES = ['db:read', 'db:write']
/** The public native client used by the jit CLI. */
export const CLI_CLIENT_ID = 'jit-cli'
/** The confidential client for CI (client_credentials). */
export const CI_CLIENT_ID = 'jit-ci'
export const CI_CLIENT_SECRET = 'jit-ci-secret'
/** The registered redirect URI of `jit-cli`; any port on it is accepted (RFC 8252). */
export const CLI_REDIRECT_URI = 'http://127.0.0.1/callback'

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'

/**
 * @typedef {object} UserAgentOptions
 * @property {string} [accountId='alice'] the login to sign in with (any value works, the password is ignored)
 * @property {boolean} [deny=false] abort instead of approving
 */

/**
 * @typedef {object} LocalProvider
 * @property {string} issuer `http://127.0.0.1:PORT`
 * @property {number} port
 * @property {string} clientId `jit-cli`
 * @property {string} ciClientId `jit-ci`
 * @property {string} ciClientSecret `jit-ci-secret`
 * @property {string} resource `urn:jit:db`
 * @property {{ keys: Record<string, string>[] }} publicJwks the public signing keys
 * @property {import('oidc-provider').default} provider the underlying oidc-provider instance
 * @property {number} tokenRequests POSTs to the token endpoint since start or the last `resetCounters()`
 * @property {Record<string, number>} tokenRequestsByGrant the same, by `grant_type` (`'unknown'` when absent)
 * @property {() => void} resetCounters
 * @property {(n?: number) => void} slowDownNext the next `n` (default 1) device-code token polls get `slow_down`
 * @property {(verificationUriComplete: string, opts?: UserAgentOptions) => Promise<void>} approveDevice
 * @property {(authorizationUrl: string, opts?: UserAgentOptions) => Promise<string>} authorize resolves to the final
 *   redirect to the client (`...callback?code=...` or `?error=access_denied`), which it does not request
 * @property {() => Promise<void>} close
 */

/**
 * @typedef {object} LocalProviderOptions
 * @property {number} [port=0] port on 127.0.0.1, 0 = any free one
 * @property {number} [deviceInterval=1] `interval` (s, may be fractional) added to the device authorization response
 * @property {number} [deviceCodeTtl=600] lifetime of a device code (s)
 * @property {number} [accessTokenTtl=3600] default and maximum access-token lifetime (s)
 * @property {string} [ttlParam='ttl'] token-endpoint form parameter asking for a shorter access-token lifetime (s)
 * @property {boolean} [omitExpiresIn=false] strip `expires_in` from token-endpoint responses
 * @property {boolean} [quiet=true] silence oidc-provider's WARNING/NOTICE console lines
 */

let quietProviders = 0
let consoleFiltered = false

/** Wraps console.warn/info once so that oidc-provider's notices vanish while a quiet provider is running. */
function installConsoleFilter() {
  if (consoleFiltered) return
  consoleFiltered = true
  for (const method of /** @type {const} */ (['warn', 'info'])) {
    const original = console[method].bind(console)
    console[method] = (/** @type {unknown[]} */ ...args) => {
      if (quietProviders > 0 && typeof args[0] === 'string' && /oidc-provider (WARNING|NOTICE):/.test(args[0])) return
      original(...args)
    }
  }
}

/**
 * @param {unknown} value a raw form value (string, repeated value or absent)
 * @returns {number | undefined} a positive whole number of seconds, or undefined when absent or not usable
 */
function parseTtl(value) {
  const raw = Array.isArray(value) ? value[0] : value
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim())) return undefined
  const seconds = Number(raw)
  return seconds > 0 ? seconds : undefined
}

/**
 * @param {LocalProviderOptions} [opts]
 * @returns {Promise<LocalProvider>}
 */
export async function startLocalProvider(opts = {}) {
  const {
    port = 0,
    deviceInterval = 1,
    deviceCodeTtl = 600,
    accessTokenTtl = 3600,
    ttlParam = 'ttl',
    omitExpiresIn = false,
    quiet = true,
  } = opts

  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const kid = randomUUID()
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }
  const publicJwks = { keys: [{ kty: 'RSA', n: String(privateJwk.n), e: String(privateJwk.e), kid, alg: 'RS256', use: 'sig' }] }

  const server = createServer()
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('local provider: no TCP address')
  const issuer = `http://127.0.0.1:${address.port}`

  /**
   * Access-token lifetime: the `ttlParam` form value when present, capped at `accessTokenTtl`.
   * @param {any} ctx koa context (absent outside a request)
   */
  const accessTokenLifetime = (ctx) => {
    const asked = parseTtl(ctx?.oidc?.body?.[ttlParam])
    return asked === undefined ? accessTokenTtl : Math.min(asked, accessTokenTtl)
  }

  /** @type {Record<string, any>} */
  const configuration = {
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        client_name: 'jit CLI',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_GRANT, 'authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [CLI_REDIRECT_URI],
      },
      {
        client_id: CI_CLIENT_ID,
        client_secret: CI_CLIENT_SECRET,
        client_name: 'jit CI',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post'],
    jwks: { keys: [privateJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true, methods: ['S256'] },
    scopes: ['openid', 'profile', 'offline_access'],
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'] },
    /** @param {unknown} _ctx @param {string} id */
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, preferred_username: id, name: id }),
    }),
    ttl: {
      /** @param {any} ctx */
      AccessToken: (ctx) => accessTokenLifetime(ctx),
      /** @param {any} ctx */
      ClientCredentials: (ctx) => accessTokenLifetime(ctx),
      AuthorizationCode: 60,
      DeviceCode: deviceCodeTtl,
      Grant: 14 * 24 * 3600,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      claimsParameter: { enabled: false },
      resourceIndicators: {
        enabled: true,
        /**
         * @param {any} ctx
         * @param {unknown} _client
         * @param {string[]} [oneOf]
         */
        defaultResource: async (ctx, _client, oneOf) => {
          if (oneOf) return oneOf.length === 1 ? oneOf[0] : oneOf.includes(DB_RESOURCE) ? DB_RESOURCE : oneOf
          const scope = String(ctx.oidc.params?.scope ?? '')
          return scope.split(' ').some((s) => s.startsWith('db:')) ? DB_RESOURCE : undefined
        },
        useGrantedResource: async () => true,
        /**
         * @param {unknown} _ctx
         * @param {string} resourceIndicator
         */
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== DB_RESOURCE) {
            throw new Provider.errors.InvalidTarget(`unknown resource ${resourceIndicator}`)
          }
          return {
            scope: DB_SCOPES.join(' '),
            accessTokenFormat: 'jwt',
            accessTokenTTL: accessTokenTtl,
          }
        },
      },
    },
  }

  if (quiet) {
    installConsoleFilter()
    quietProviders += 1
  }

  /** @type {Provider} */
  let provider
  try {
    provider = new Provider(issuer, configuration)
  } catch (err) {
    if (quiet) quietProviders -= 1
    server.close()
    throw err
  }
  provider.proxy = false

  const counters = { tokenRequests: 0, /** @type {Record<string, number>} */ byGrant: {} }
  let slowDowns = 0

  /** @param {string} grant */
  const count = (grant) => {
    counters.tokenRequests += 1
    counters.byGrant[grant] = (counters.byGrant[grant] ?? 0) + 1
  }

  provider.use(async (ctx, next) => {
    const isTokenPost = ctx.method === 'POST' && ctx.path === '/token'

    if (isTokenPost && slowDowns > 0) {
      // Read the form ourselves; oidc-provider then takes it from ctx.req.body.
      const chunks = []
      for await (const chunk of ctx.req) chunks.push(chunk)
      const raw = Buffer.concat(chunks).toString('utf8')
      const grant = new URLSearchParams(raw).get('grant_type') ?? 'unknown'
      if (grant === DEVICE_GRANT) {
        slowDowns -= 1
        count(grant)
        ctx.status = 400
        ctx.set('cache-control', 'no-store')
        ctx.body = { error: 'slow_down', error_description: 'polling too fast (local provider slowDownNext)' }
        return
      }
      /** @type {any} */ (ctx.req).body = raw
    }

    try {
      await next()
    } finally {
      if (isTokenPost) count(String(ctx.oidc?.body?.grant_type ?? 'unknown'))
    }

    const body = ctx.body
    if (body === null || typeof body !== 'object' || Buffer.isBuffer(body) || typeof body.pipe === 'function') return
    if (ctx.method === 'POST' && ctx.path === '/device/auth' && 'device_code' in body) {
      body.interval = deviceInterval
    } else if (isTokenPost && omitExpiresIn) {
      delete body.expires_in
    } else if (ctx.path === '/.well-known/openid-configuration' && Array.isArray(body.scopes_supported)) {
      body.scopes_supported = [...new Set([...body.scopes_supported, ...DB_SCOPES])]
    }
  })

  server.on('request', provider.callback())

  let closed = false
  return {
    issuer,
    port: address.port,
    clientId: CLI_CLIENT_ID,
    ciClientId: CI_CLIENT_ID,
    ciClientSecret: CI_CLIENT_SECRET,
    resource: DB_RESOURCE,
    publicJwks,
    provider,
    get tokenRequests() {
      return counters.tokenRequests
    },
    get tokenRequestsByGrant() {
      return { ...counters.byGrant }
    },
    resetCounters() {
      counters.tokenRequests = 0
      counters.byGrant = {}
    },
    slowDownNext(n = 1) {
      slowDowns = n
    },
    approveDevice: (uri, uaOpts) => approveDevice(issuer, uri, uaOpts),
    authorize: (url, uaOpts) => authorize(issuer, url, uaOpts),
    async close() {
      if (closed) return
      closed = true
      if (quiet) quietProviders -= 1
      const done = new Promise((resolve) => server.close(() => resolve(undefined)))
      server.closeAllConnections()
      await done
    },
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Scripted user agent
// ---------------------------------------------------------------------------------------------------------------------

/** @typedef {{ name: string, value: string, path: string }} Cookie */

/** A tiny cookie jar for one host: honours Path and deletion by Expires/Max-Age. */
class CookieJar {
  /** @type {Map<string, Cookie>} */
  #cookies = new Map()

  /** @param {Response} res */
  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq < 1) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = '/'
      let expired = value === ''
      for (const attribute of attributes) {
        const [key, ...rest] = attribute.split('=')
        const attrValue = rest.join('=').trim()
        switch (key.trim().toLowerCase()) {
          case 'path':
            path = attrValue || '/'
            break
          case 'expires':
            if (Date.parse(attrValue) <= Date.now()) expired = true
            break
          case 'max-age':
            if (Number(attrValue) <= 0) expired = true
            break
        }
      }
      const key = `${name};${path}`
      if (expired) this.#cookies.delete(key)
      else this.#cookies.set(key, { name, value, path })
    }
  }

  /** @param {URL} url */
  header(url) {
    const matching = [...this.#cookies.values()].filter(({ path }) =>
      url.pathname === path || url.pathname.startsWith(path.endsWith('/') ? path : `${path}/`))
    matching.sort((a, b) => b.path.length - a.path.length)
    return matching.map(({ name, value }) => `${name}=${value}`).join('; ')
  }
}

/**
 * @typedef {object} Page
 * @property {URL} url
 * @property {number} status
 * @property {string} html
 */

/**
 * @typedef {object} Form
 * @property {string} action
 * @property {string | undefined} id
 * @property {Record<string, string>} fields hidden (and pre-filled) inputs
 */

class UserAgent {
  #jar = new CookieJar()
  #origin

  /** @param {string} issuer */
  constructor(issuer) {
    this.#origin = new URL(issuer).origin
  }

  /**
   * Requests `url` and follows redirects within the provider's origin.
   * @param {string | URL} url
   * @param {Record<string, string>} [form] POSTed as a urlencoded form when given
   * @returns {Promise<{ page: Page } | { redirect: string }>} a page, or a redirect that leaves the provider
   */
  async request(url, form) {
    let target = new URL(url)
    /** @type {RequestInit} */
    let init = form
      ? { method: 'POST', body: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } }
      : { method: 'GET' }
    for (let hops = 0; hops < 20; hops += 1) {
      if (target.origin !== this.#origin) return { redirect: target.href }
      const headers = new Headers(init.headers)
      const cookie = this.#jar.header(target)
      if (cookie) headers.set('cookie', cookie)
      const res = await fetch(target, { ...init, headers, redirect: 'manual' })
      this.#jar.store(res)
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel()
        target = new URL(location, target)
        if (res.status !== 307 && res.status !== 308) init = { method: 'GET' }
        continue
      }
      return { page: { url: target, status: res.status, html: await res.text() } }
    }
    throw new Error(`local provider user agent: too many redirects at ${target.href}`)
  }
}

/** @param {string} s */
function decodeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity) => {
    const e = String(entity).toLowerCase()
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16))
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10))
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: '\'' }[e] ?? _
  })
}

/**
 * @param {string} tag
 * @param {string} name
 */
function attr(tag, name) {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag)
  return m ? decodeHtml(m[1] ?? m[2] ?? m[3] ?? '') : undefined
}

/**
 * The first form of a page with its pre-filled inputs.
 * @param {Page} page
 * @returns {Form | undefined}
 */
function parseForm(page) {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(page.html)
  if (!m) return undefined
  const open = `<form ${m[1]}>`
  /** @type {Record<string, string>} */
  const fields = {}
  for (const [input] of m[2].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(input, 'name')
    const value = attr(input, 'value')
    if (name && value !== undefined) fields[name] = value
  }
  return { action: new URL(attr(open, 'action') ?? page.url.href, page.url).href, id: attr(open, 'id'), fields }
}

/** @param {Page} page */
function describe(page) {
  const text = page.html.replace(/<style[\s\S]*?<\/style>/gi, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim()
  return `${page.status} at ${page.url.pathname}: ${text.slice(0, 300)}`
}

/** @param {Page} page */
const isDeviceSuccess = (page) => page.status === 200 && /<title>Sign-in Success<\/title>/i.test(page.html)

/**
 * Walks the provider's pages: the device-code auto-submit and confirm forms, login, consent.
 * @param {UserAgent} ua
 * @param {{ page: Page } | { redirect: string }} start
 * @param {Required<UserAgentOptions>} opts
 * @returns {Promise<{ page: Page } | { redirect: string }>} the success page or the redirect leaving the provider
 */
async function walk(ua, start, { accountId, deny }) {
  let current = start
  for (let step = 0; step < 12; step += 1) {
    if ('redirect' in current) return current
    const { page } = current
    if (isDeviceSuccess(page)) return current
    const form = parseForm(page)
    if (!form || page.status >= 400) throw new Error(`local provider user agent: unexpected page ${describe(page)}`)
    // The user-code input page: shown again after an abort, or with an error about the code.
    if (form.id === 'op.deviceInputForm') return current
    const { fields } = form
    if (form.id === 'op.deviceConfirmForm' && deny) {
      current = await ua.request(form.action, { ...fields, abort: 'yes' })
    } else if (fields.prompt === 'login' || fields.prompt === 'consent') {
      if (deny) {
        current = await ua.request(new URL(`${new URL(form.action).pathname}/abort`, form.action))
      } else if (fields.prompt === 'login') {
        current = await ua.request(form.action, { ...fields, login: accountId, password: 'local' })
      } else {
        current = await ua.request(form.action, fields)
      }
    } else {
      // The device flow's auto-submitting form_post page (xsrf + user_code) and the confirm form.
      current = await ua.request(form.action, fields)
    }
  }
  throw new Error('local provider user agent: too many steps')
}

/**
 * Completes (or, with `deny`, aborts) the device flow's user part at `verification_uri_complete`.
 * @param {string} issuer
 * @param {string} verificationUriComplete
 * @param {UserAgentOptions} [opts]
 * @returns {Promise<void>}
 */
async function approveDevice(issuer, verificationUriComplete, { accountId = 'alice', deny = false } = {}) {
  const ua = new UserAgent(issuer)
  const end = await walk(ua, await ua.request(verificationUriComplete), { accountId, deny })
  if ('redirect' in end) throw new Error(`local provider user agent: device flow left the provider for ${end.redirect}`)
  if (deny ? !/interrupted/i.test(end.page.html) : !isDeviceSuccess(end.page)) {
    throw new Error(`local provider user agent: device flow ended on ${describe(end.page)}`)
  }
}

/**
 * Follows an authorization URL through login and consent (or aborts with `deny`).
 * @param {string} issuer
 * @param {string} authorizationUrl
 * @param {UserAgentOptions} [opts]
 * @returns {Promise<string>} the redirect to the client, not requested
 */
async function authorize(issuer, authorizationUrl, { accountId = 'alice', deny = false } = {}) {
  const ua = new UserAgent(issuer)
  const end = await walk(ua, await ua.request(authorizationUrl), { accountId, deny })
  if ('page' in end) throw new Error(`local provider user agent: authorization ended on ${describe(end.page)}`)
  return end.redirect
}
