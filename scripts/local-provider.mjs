/**
 * An embedded OpenID provider (oidc-provider 8) on 127.0.0.1 for `npm run demo`, the benchmarks and the integration and
 * e2e tests, plus a scripted user agent that logs in and consents over plain HTTP, driving the provider's own dev
 * pages (which stay usable by a person in a browser).
 *
 * Machine clients for CI: `jit-ci` (client secret, basic or post) and `jit-ci-jwt` (`private_key_jwt`), both allowed
 * client_credentials and RFC 8693 token exchange. The token exchange trades a CI system's own OIDC token (GitHub
 * Actions, GitLab CI) from a trusted CI issuer (`trustedCiIssuers`, `trustCiIssuer`) for a narrowly scoped JWT access
 * token for `urn:jit:db`; see `narrowScope` for the rule.
 *
 * A second resource server, `urn:jit:api` (`api:read api:write`), gets JWT access tokens too. Refresh tokens come with
 * `offline_access` (rotated on every use by `jit-cli`). Logins carry `acr`/`amr`/`auth_time` into the ID token; the
 * scripted user agent chooses them. `grantExtraScopes` widens every issued access token on purpose, `userinfo` and
 * `introspect` help tests of revocation.
 *
 * Not for production: in-memory storage, any login and password are accepted.
 */
import { createServer } from 'node:http'
import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import Provider, { errors as oidcErrors } from 'oidc-provider'
import { createLocalJWKSet, decodeJwt, errors as joseErrors, exportJWK, exportPKCS8, generateKeyPair, jwtVerify } from 'jose'

/** The resource indicator (and JWT `aud`) of the demo database API. */
export const DB_RESOURCE = 'urn:jit:db'
/** The scopes the demo database API knows. */
export const DB_SCOPES = ['db:read', 'db:write']
/** The resource indicator (and JWT `aud`) of the second demo resource server, an HTTP API. */
export const API_RESOURCE = 'urn:jit:api'
/** The scopes the demo HTTP API knows. */
export const API_SCOPES = ['api:read', 'api:write']
/** The authentication context classes the provider advertises (`acr_values_supported`): password, and password + MFA. */
export const ACR_VALUES = ['urn:jit:loa:1', 'urn:jit:loa:2']
/** The `acr` of a login unless the scripted user agent asks for another. */
export const DEFAULT_ACR = 'urn:jit:loa:1'
/** The `amr` of a login unless the scripted user agent asks for another. */
export const DEFAULT_AMR = ['pwd']
/** The public native client used by the jit CLI. */
export const CLI_CLIENT_ID = 'jit-cli'
/**
 * The confidential client for CI: client_credentials and token exchange, authenticated with its secret. Registered as
 * `client_secret_basic`, but oidc-provider 8 accepts the secret in the form (`client_secret_post`) as well.
 */
export const CI_CLIENT_ID = 'jit-ci'
export const CI_CLIENT_SECRET = 'jit-ci-secret'
/** The confidential client for CI authenticated with `private_key_jwt` (RFC 7523, RS256; key pair made at start). */
export const CI_JWT_CLIENT_ID = 'jit-ci-jwt'
/** RFC 8693 token exchange. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** The `subject_token_type` values the token-exchange grant accepts. */
export const SUBJECT_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:jwt']
/** The `issued_token_type` of the token-exchange grant (and the only `requested_token_type` it accepts). */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
/** The registered redirect URI of `jit-cli`; any port on it is accepted (RFC 8252). */
export const CLI_REDIRECT_URI = 'http://127.0.0.1/callback'

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'
/** Resource indicator → the scopes of that resource server. */
const RESOURCE_SCOPES = { [DB_RESOURCE]: DB_SCOPES, [API_RESOURCE]: API_SCOPES }
/** Claims of a CI subject token that name the workload, in order of preference (GitHub, then GitLab). */
const CI_IDENTITY_CLAIMS = ['repository', 'project_path']

/**
 * @typedef {object} TrustedCiIssuer
 * @property {string} issuer the CI issuer's `iss`, compared exactly
 * @property {{ keys: object[] }} jwks its public signing keys
 * @property {string | string[]} audience the `aud` its tokens must carry (one of them, when a list)
 * @property {Record<string, string[]>} [allow] workload (`repository` or `project_path` claim, or `'*'` for any) →
 *   the most scopes it may get; default `{ '*': DB_SCOPES }`
 */

/**
 * @typedef {object} UserAgentOptions
 * @property {string} [accountId='alice'] the login to sign in with (any value works, the password is ignored)
 * @property {boolean} [deny=false] abort instead of approving
 * @property {string} [acr='urn:jit:loa:1'] the `acr` of the login (any non-empty string; the ID token carries it)
 * @property {string[]} [amr=['pwd']] the `amr` of the login, e.g. `['pwd', 'otp']` for MFA
 * @property {number} [authTime] when the person signed in (epoch seconds, default now): the ID token's `auth_time`
 */

/**
 * @typedef {object} LocalProvider
 * @property {string} issuer `http://127.0.0.1:PORT`
 * @property {number} port
 * @property {string} clientId `jit-cli`
 * @property {string} ciClientId `jit-ci`
 * @property {string} ciClientSecret `jit-ci-secret`
 * @property {string} ciJwtClientId `jit-ci-jwt`
 * @property {string} ciPrivateKeyPem the PKCS#8 PEM private key of `jit-ci-jwt` (RSA, for RS256 client assertions)
 * @property {string} ciKeyId the `kid` of that key in the client's registered `jwks`
 * @property {(entry: TrustedCiIssuer) => void} trustCiIssuer trusts (or re-trusts, replacing) a CI issuer
 * @property {string[]} trustedCiIssuers the trusted CI issuers' identifiers
 * @property {string} resource `urn:jit:db`
 * @property {string} apiResource `urn:jit:api`
 * @property {string[]} grantExtraScopes the scopes added to every issued access token (a copy)
 * @property {(scopes: string[]) => void} setGrantExtraScopes replaces them (`[]` = none)
 * @property {(accessToken: string) => Promise<number>} userinfo the HTTP status of GET /me with the token as Bearer
 * @property {(token: string, tokenTypeHint?: string) => Promise<{ active: boolean } & Record<string, unknown>>} introspect
 *   RFC 7662 introspection as `jit-ci`
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
 * @property {number} [refreshTokenTtl=86400] lifetime of a refresh token (s); each rotation starts a new one
 * @property {string[]} [grantExtraScopes=[]] scopes added to every issued access token and its `scope` response field
 * @property {string} [ttlParam='ttl'] token-endpoint form parameter asking for a shorter access-token lifetime (s)
 * @property {boolean} [omitExpiresIn=false] strip `expires_in` from token-endpoint responses
 * @property {boolean} [quiet=true] silence oidc-provider's WARNING/NOTICE console lines
 * @property {TrustedCiIssuer[]} [trustedCiIssuers=[]] CI issuers whose tokens the token-exchange grant accepts
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
 * @param {string} description the `error_description` sent to the client
 * @returns {Error} an `invalid_grant` error (oidc-provider's own puts its detail only in the log)
 */
function invalidGrant(description) {
  return Object.assign(new oidcErrors.InvalidGrant(description), { error_description: description })
}

/**
 * @param {unknown} value a form parameter that may be repeated
 * @returns {string[]} its values
 */
const values = (value) => (value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)])

/**
 * @param {unknown} list
 * @param {string} what the option's name, for the error
 * @returns {string[]} the scopes, without duplicates
 */
function checkScopeList(list, what) {
  if (!Array.isArray(list) || !list.every((scope) => typeof scope === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope))) {
    throw new TypeError(`${what}: expected an array of scope tokens`)
  }
  return [...new Set(list)]
}

/**
 * Reads a request's whole body and leaves it where oidc-provider's body parser finds it afterwards.
 * @param {any} ctx koa context
 * @returns {Promise<string>}
 */
async function readBody(ctx) {
  if (typeof ctx.req.body === 'string') return ctx.req.body
  const chunks = []
  for await (const chunk of ctx.req) chunks.push(chunk)
  const raw = Buffer.concat(chunks).toString('utf8')
  ctx.req.body = raw
  return raw
}

/**
 * oidc-provider drops `offline_access` from an authorization request whose `prompt` lacks `consent` (OIDC Core 11).
 * Many providers do not insist; this one adds `consent` instead, so a client gets a refresh token without asking for
 * the consent prompt. `prompt=none` is left alone (offline_access is then dropped).
 * @param {URLSearchParams} params the request's parameters
 * @returns {boolean} whether they changed
 */
function impliedConsent(params) {
  const scopes = (params.get('scope') ?? '').split(' ')
  if (!scopes.includes('offline_access')) return false
  const prompts = (params.get('prompt') ?? '').split(' ').filter(Boolean)
  if (prompts.includes('consent') || prompts.includes('none')) return false
  params.set('prompt', [...prompts, 'consent'].join(' '))
  return true
}

/**
 * @param {TrustedCiIssuer} entry
 * @returns {Required<TrustedCiIssuer>}
 */
function checkTrustedCiIssuer(entry) {
  if (typeof entry?.issuer !== 'string' || entry.issuer === '') throw new TypeError('trusted CI issuer: issuer missing')
  if (!Array.isArray(entry.jwks?.keys)) throw new TypeError(`trusted CI issuer ${entry.issuer}: jwks.keys missing`)
  if (entry.audience === undefined || values(entry.audience).length === 0) {
    throw new TypeError(`trusted CI issuer ${entry.issuer}: audience missing`)
  }
  return { ...entry, allow: entry.allow ?? { '*': [...DB_SCOPES] } }
}

/**
 * The token-exchange policy: which scopes a verified CI subject token may get.
 *
 * The workload is named by the token's `repository` claim (GitHub Actions) or, failing that, its `project_path`
 * (GitLab CI). The issuer's `allow` entry for that name (or else its `'*'` entry) lists the most it may get; no entry
 * → `invalid_grant`. The issued scope is the requested scope (default: everything allowed) intersected with the allowed
 * scopes and with the database's scopes, in the requested order; an empty result → `invalid_scope`.
 *
 * @param {Record<string, string[]>} allow
 * @param {Record<string, unknown>} claims the verified subject-token claims
 * @param {string | undefined} requested the `scope` form parameter
 * @returns {{ workload: string | undefined, scope: string }}
 */
function narrowScope(allow, claims, requested) {
  const claim = CI_IDENTITY_CLAIMS.find((name) => typeof claims[name] === 'string')
  const workload = claim === undefined ? undefined : String(claims[claim])
  const allowed = (workload !== undefined && Object.hasOwn(allow, workload) ? allow[workload] : undefined)
    ?? (Object.hasOwn(allow, '*') ? allow['*'] : undefined)
  if (allowed === undefined) {
    throw invalidGrant(workload === undefined
      ? `subject token names no workload (${CI_IDENTITY_CLAIMS.join(' or ')} claim) and the issuer allows no other`
      : `workload ${workload} is not allowed by the trust policy for this issuer`)
  }
  const permitted = new Set(allowed.filter((scope) => DB_SCOPES.includes(scope)))
  const asked = requested === undefined || requested.trim() === '' ? [...permitted] : [...new Set(requested.trim().split(/\s+/))]
  const granted = asked.filter((scope) => permitted.has(scope))
  if (granted.length === 0) {
    throw new oidcErrors.InvalidScope(
      `none of the requested scopes (${asked.join(' ') || 'none'}) is allowed for ${workload ?? 'this workload'}`,
      asked.join(' '),
    )
  }
  return { workload, scope: granted.join(' ') }
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
    refreshTokenTtl = 24 * 3600,
    grantExtraScopes = [],
    ttlParam = 'ttl',
    omitExpiresIn = false,
    quiet = true,
    trustedCiIssuers = [],
  } = opts

  let extraScopes = checkScopeList(grantExtraScopes, 'grantExtraScopes')

  /** @type {Map<string, Required<TrustedCiIssuer>>} */
  const trusted = new Map()
  for (const entry of trustedCiIssuers) {
    const checked = checkTrustedCiIssuer(entry)
    trusted.set(checked.issuer, checked)
  }

  const ciKey = await generateKeyPair('RS256', { extractable: true })
  const ciKeyId = randomUUID()
  const ciPrivateKeyPem = await exportPKCS8(ciKey.privateKey)
  const ciPublicJwk = { ...(await exportJWK(ciKey.publicKey)), kid: ciKeyId, alg: 'RS256', use: 'sig' }

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

  /**
   * A resource server as `getResourceServerInfo` describes it.
   * @param {string} indicator `urn:jit:db` or `urn:jit:api`
   */
  const resourceServerInfo = (indicator) => ({
    scope: RESOURCE_SCOPES[indicator].join(' '),
    accessTokenFormat: 'jwt',
    accessTokenTTL: accessTokenTtl,
  })
  /** The database resource server, as `getResourceServerInfo` describes it. */
  const dbResourceServerInfo = () => resourceServerInfo(DB_RESOURCE)

  /** Extra claims of tokens issued by token exchange, read by `extraTokenClaims`. @type {WeakMap<object, object>} */
  const exchangeClaims = new WeakMap()

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
        grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: CI_JWT_CLIENT_ID,
        client_name: 'jit CI (private_key_jwt)',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'RS256',
        jwks: { keys: [ciPublicJwk] },
        grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT],
        response_types: [],
        redirect_uris: [],
      },
    ],
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    jwks: { keys: [privateJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true, methods: ['S256'] },
    scopes: ['openid', 'profile', 'offline_access'],
    acrValues: [...ACR_VALUES],
    // acr, amr and auth_time ride on the openid scope, so every ID token carries them (oidc-provider otherwise adds
    // auth_time only with max_age or prompt=login, and acr only with acr_values).
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      profile: ['preferred_username', 'name'],
    },
    // The default, spelled out: a refresh token when the client may use the grant and offline_access was asked for and
    // granted (`code` is the authorization or device code). At the authorization endpoint oidc-provider drops
    // offline_access unless prompt includes consent: the middleware below adds `consent` for such requests.
    /** @param {unknown} _ctx @param {any} client @param {any} code */
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    /** @param {unknown} _ctx @param {object} token */
    extraTokenClaims: async (_ctx, token) => exchangeClaims.get(token),
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
      RefreshToken: refreshTokenTtl,
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
          // At the token endpoint, no resource named and the grant holds several: ambiguous, so the array goes back
          // and oidc-provider answers invalid_target (the client must name one with `resource`).
          if (oneOf) {
            const unique = [...new Set(oneOf)]
            return unique.length === 1 ? unique[0] : unique
          }
          // At the authorization / device endpoint, no resource named: the resource servers whose scopes were asked.
          const scopes = String(ctx.oidc.params?.scope ?? '').split(' ')
          const servers = Object.entries(RESOURCE_SCOPES)
            .filter(([, known]) => scopes.some((scope) => known.includes(scope)))
            .map(([indicator]) => indicator)
          return servers.length === 0 ? undefined : servers.length === 1 ? servers[0] : servers
        },
        useGrantedResource: async () => true,
        /**
         * @param {unknown} _ctx
         * @param {string} resourceIndicator
         */
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (!Object.hasOwn(RESOURCE_SCOPES, resourceIndicator)) {
            throw new oidcErrors.InvalidTarget(`unknown resource ${resourceIndicator}`)
          }
          return resourceServerInfo(resourceIndicator)
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

  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    tokenExchangeHandler,
    ['subject_token', 'subject_token_type', 'audience', 'resource', 'scope', 'requested_token_type', 'actor_token', 'actor_token_type'],
    ['audience', 'resource'],
  )

  /**
   * RFC 8693 token exchange of a CI system's OIDC token (the client is already authenticated and allowed the grant).
   * @param {any} ctx koa context
   * @param {() => Promise<void>} next
   */
  async function tokenExchangeHandler(ctx, next) {
    const { params, client } = ctx.oidc
    const { InvalidRequest, InvalidTarget } = oidcErrors

    if (!params.subject_token) throw new InvalidRequest('missing required parameter subject_token')
    if (!params.subject_token_type) throw new InvalidRequest('missing required parameter subject_token_type')
    if (!SUBJECT_TOKEN_TYPES.includes(params.subject_token_type)) {
      throw new InvalidRequest(`unsupported subject_token_type ${params.subject_token_type}`)
    }
    if (params.actor_token !== undefined) throw new InvalidRequest('actor_token is not supported')
    if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
      throw new InvalidRequest(`unsupported requested_token_type ${params.requested_token_type}`)
    }
    for (const target of [...values(params.resource), ...values(params.audience)]) {
      if (target !== DB_RESOURCE) throw new InvalidTarget(`unknown resource or audience ${target}`)
    }

    /** @type {Record<string, unknown>} */
    let unverified
    try {
      unverified = decodeJwt(params.subject_token)
    } catch {
      throw invalidGrant('subject_token is not a JWT')
    }
    const entry = typeof unverified.iss === 'string' ? trusted.get(unverified.iss) : undefined
    if (entry === undefined) throw invalidGrant(`subject token issuer ${String(unverified.iss)} is not trusted`)

    /** @type {Record<string, unknown>} */
    let claims
    try {
      const verified = await jwtVerify(params.subject_token, createLocalJWKSet(/** @type {any} */ (entry.jwks)), {
        issuer: entry.issuer,
        audience: entry.audience,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: 5,
      })
      claims = verified.payload
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw invalidGrant('subject token expired')
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        throw invalidGrant(`subject token ${err.claim} claim invalid: ${err.message}`)
      }
      if (err instanceof joseErrors.JOSEError) throw invalidGrant(`subject token rejected: ${err.message}`)
      throw err
    }

    const { workload, scope } = narrowScope(entry.allow, claims, params.scope)
    const token = new provider.AccessToken({ accountId: String(claims.sub), client, gty: 'token-exchange', scope })
    token.resourceServer = new provider.ResourceServer(DB_RESOURCE, dbResourceServerInfo())
    exchangeClaims.set(token, {
      act: { sub: client.clientId },
      ci_iss: entry.issuer,
      ...(workload === undefined ? {} : { ci_workload: workload }),
    })
    ctx.oidc.entity('AccessToken', token)
    const value = await token.save()

    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    }
    await next()
  }

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
      const raw = await readBody(ctx)
      const grant = new URLSearchParams(raw).get('grant_type') ?? 'unknown'
      if (grant === DEVICE_GRANT) {
        slowDowns -= 1
        count(grant)
        ctx.status = 400
        ctx.set('cache-control', 'no-store')
        ctx.body = { error: 'slow_down', error_description: 'polling too fast (local provider slowDownNext)' }
        return
      }
    }

    if (ctx.path === '/auth' || (ctx.method === 'POST' && ctx.path === '/request')) {
      if (ctx.method === 'GET') {
        const params = new URLSearchParams(ctx.querystring)
        if (impliedConsent(params)) ctx.querystring = params.toString()
      } else if (ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) {
        const params = new URLSearchParams(await readBody(ctx))
        if (impliedConsent(params)) /** @type {any} */ (ctx.req).body = params.toString()
      }
    }

    const interaction = /^\/interaction\/([^/]+)$/.exec(ctx.path)
    if (interaction && ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) {
      const form = new URLSearchParams(await readBody(ctx))
      if (form.get('prompt') === 'login') {
        await finishLogin(ctx, form)
        return
      }
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
      body.scopes_supported = [...new Set([...body.scopes_supported, ...DB_SCOPES, ...API_SCOPES])]
    }
  })

  /**
   * The login step of an interaction, in place of oidc-provider's dev handler (whose login carries only the account):
   * the dev login page posts `login` and `password`; the scripted user agent adds `acr`, `amr` (space-separated) and
   * `auth_time` (epoch seconds). Defaults: `urn:jit:loa:1`, `pwd`, now.
   * @param {any} ctx koa context
   * @param {URLSearchParams} form
   */
  async function finishLogin(ctx, form) {
    ctx.set('cache-control', 'no-store')
    const details = await provider.interactionDetails(ctx.req, ctx.res)
    const accountId = form.get('login') ?? ''
    const acr = form.get('acr') ?? DEFAULT_ACR
    const amr = form.has('amr') ? String(form.get('amr')).split(' ').filter(Boolean) : [...DEFAULT_AMR]
    const authTime = form.get('auth_time')
    if (details.prompt.name !== 'login') ctx.throw(400, `interaction ${details.uid} is at ${details.prompt.name}, not login`)
    if (accountId === '' || acr === '' || amr.length === 0) ctx.throw(400, 'login, acr and amr must not be empty')
    if (authTime !== null && !/^\d+$/.test(authTime)) ctx.throw(400, 'auth_time must be whole epoch seconds')
    const login = { accountId, acr, amr, ...(authTime === null ? {} : { ts: Number(authTime) }) }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, { login }, { mergeWithLastSubmission: false })
    ctx.status = 303
    ctx.redirect(returnTo)
  }

  // Over-broad grants on demand: every access token (and so the token response's `scope`) gets the extra scopes.
  for (const Model of [provider.AccessToken, provider.ClientCredentials]) {
    const save = Model.prototype.save
    Model.prototype.save = function saveWithExtraScopes(/** @type {unknown[]} */ ...args) {
      if (extraScopes.length > 0) {
        const scopes = String(this.scope ?? '').split(' ').filter(Boolean)
        this.scope = [...new Set([...scopes, ...extraScopes])].join(' ')
      }
      return save.apply(this, args)
    }
  }

  server.on('request', provider.callback())

  let closed = false
  return {
    issuer,
    port: address.port,
    clientId: CLI_CLIENT_ID,
    ciClientId: CI_CLIENT_ID,
    ciClientSecret: CI_CLIENT_SECRET,
    ciJwtClientId: CI_JWT_CLIENT_ID,
    ciPrivateKeyPem,
    ciKeyId,
    trustCiIssuer(entry) {
      const checked = checkTrustedCiIssuer(entry)
      trusted.set(checked.issuer, checked)
    },
    get trustedCiIssuers() {
      return [...trusted.keys()]
    },
    resource: DB_RESOURCE,
    apiResource: API_RESOURCE,
    get grantExtraScopes() {
      return [...extraScopes]
    },
    setGrantExtraScopes(list) {
      extraScopes = checkScopeList(list, 'setGrantExtraScopes')
    },
    async userinfo(accessToken) {
      const res = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } })
      await res.body?.cancel()
      return res.status
    },
    async introspect(token, tokenTypeHint) {
      const form = new URLSearchParams({ token, ...(tokenTypeHint === undefined ? {} : { token_type_hint: tokenTypeHint }) })
      const res = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        body: form,
        headers: { authorization: `Basic ${Buffer.from(`${CI_CLIENT_ID}:${CI_CLIENT_SECRET}`).toString('base64')}` },
      })
      if (res.status !== 200) throw new Error(`local provider: introspection answered ${res.status}: ${await res.text()}`)
      return /** @type {{ active: boolean } & Record<string, unknown>} */ (await res.json())
    },
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
 * The login form's fields beyond the dev page's own: what the provider's login handler turns into `acr`, `amr` and
 * `auth_time`.
 * @param {UserAgentOptions} opts
 * @returns {Record<string, string>}
 */
function loginFields({ acr = DEFAULT_ACR, amr = DEFAULT_AMR, authTime }) {
  if (typeof acr !== 'string' || acr === '') throw new TypeError('local provider user agent: acr must be a non-empty string')
  if (!Array.isArray(amr) || amr.length === 0 || !amr.every((m) => typeof m === 'string' && /^\S+$/.test(m))) {
    throw new TypeError('local provider user agent: amr must be a non-empty list of words')
  }
  if (authTime !== undefined && !(Number.isInteger(authTime) && authTime >= 0)) {
    throw new TypeError('local provider user agent: authTime must be whole epoch seconds')
  }
  return { acr, amr: amr.join(' '), ...(authTime === undefined ? {} : { auth_time: String(authTime) }) }
}

/**
 * Walks the provider's pages: the device-code auto-submit and confirm forms, login, consent (which grants whatever
 * the page lists as missing, `offline_access` included).
 * @param {UserAgent} ua
 * @param {{ page: Page } | { redirect: string }} start
 * @param {{ accountId: string, deny: boolean, login: Record<string, string> }} opts
 * @returns {Promise<{ page: Page } | { redirect: string }>} the success page or the redirect leaving the provider
 */
async function walk(ua, start, { accountId, deny, login }) {
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
        current = await ua.request(form.action, { ...fields, ...login, login: accountId, password: 'local' })
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
async function approveDevice(issuer, verificationUriComplete, opts = {}) {
  const { accountId = 'alice', deny = false } = opts
  const login = loginFields(opts)
  const ua = new UserAgent(issuer)
  const end = await walk(ua, await ua.request(verificationUriComplete), { accountId, deny, login })
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
async function authorize(issuer, authorizationUrl, opts = {}) {
  const { accountId = 'alice', deny = false } = opts
  const login = loginFields(opts)
  const ua = new UserAgent(issuer)
  const end = await walk(ua, await ua.request(authorizationUrl), { accountId, deny, login })
  if ('page' in end) throw new Error(`local provider user agent: authorization ended on ${describe(end.page)}`)
  return end.redirect
}
