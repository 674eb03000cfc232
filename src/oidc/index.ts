/**
 * The provider adapter: the only module that imports openid-client. Loaded lazily, so `jit token` on a cache hit
 * never pays for it.
 */
import { createPrivateKey, webcrypto, type KeyObject } from 'node:crypto'
import * as client from 'openid-client'
import { ErrorCode, JitError } from '../errors.js'
import type {
  ClientAuthSpec,
  DeviceAuthorization,
  DevicePollResult,
  DiscoverInput,
  OidcPort,
  ProviderSession,
  TokenResponse,
} from '../core/ports.js'
import { mapOidcError } from './map-error.js'
import { isLoopbackUrl } from './loopback.js'

export { isLoopbackUrl } from './loopback.js'

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'
const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

async function clientAuthentication(spec: ClientAuthSpec): Promise<client.ClientAuth> {
  switch (spec.method) {
    case 'none':
      return client.None()
    case 'client_secret_post':
      return client.ClientSecretPost(spec.secret)
    case 'client_secret_basic':
      return client.ClientSecretBasic(spec.secret)
    case 'private_key_jwt':
      return client.PrivateKeyJwt({ key: await importPrivateKey(spec.privateKeyPem), ...(spec.kid ? { kid: spec.kid } : {}) })
    case 'client_assertion':
      return (_as, c, body) => {
        body.set('client_id', c.client_id)
        body.set('client_assertion_type', JWT_BEARER_ASSERTION)
        body.set('client_assertion', spec.assertion)
      }
  }
}

/** PKCS#8 PEM (RSA → RS256, EC P-256 → ES256) to a WebCrypto signing key, which openid-client takes. */
async function importPrivateKey(pem: string): Promise<webcrypto.CryptoKey> {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch (err) {
    throw new JitError(ErrorCode.CONFIG, 'the private key file is not a PEM private key', { cause: err })
  }
  const der = key.export({ format: 'der', type: 'pkcs8' })
  if (key.asymmetricKeyType === 'rsa') {
    return webcrypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign'])
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  }
  throw new JitError(ErrorCode.CONFIG, `unsupported private key type "${key.asymmetricKeyType ?? 'unknown'}": use RSA or EC P-256`)
}

/** Options of {@link createOidc}. */
export interface CreateOidcOptions {
  /** Used for every request (discovery, JWKS, token endpoint): tests pass a scripted fetch. */
  fetch?: typeof fetch
  /** Seconds per HTTP request. */
  timeoutSeconds?: number
}

/** Builds the {@link OidcPort} on openid-client v6. */
export function createOidc(options: CreateOidcOptions = {}): OidcPort {
  return {
    async discover(input: DiscoverInput): Promise<ProviderSession> {
      const issuerUrl = parseIssuer(input.issuer)
      const insecure = issuerUrl.protocol === 'http:'
      if (insecure && !(input.allowInsecureLoopback && isLoopbackUrl(issuerUrl))) {
        throw new JitError(ErrorCode.INSECURE_ISSUER, `refusing plain http to "${input.issuer}"`, {
          hint: isLoopbackUrl(issuerUrl)
            ? 'for a local provider on a loopback address, opt in with --insecure-loopback'
            : 'use the https URL of the provider',
        })
      }
      const discoveryOptions: client.DiscoveryRequestOptions = { timeout: options.timeoutSeconds ?? 30 }
      const quirks = googleDeviceQuirk(options.fetch ?? fetch)
      discoveryOptions[client.customFetch] = quirks.fetch as client.CustomFetch
      // Opt-in only, and only for loopback issuers (checked above): a local provider for development and tests.
      // eslint-disable-next-line @typescript-eslint/no-deprecated
      if (insecure) discoveryOptions.execute = [client.allowInsecureRequests]
      const auth = await clientAuthentication(input.clientAuth ?? (input.clientSecret ? { method: 'client_secret_post', secret: input.clientSecret } : { method: 'none' }))
      let config: client.Configuration
      try {
        config = await client.discovery(issuerUrl, input.clientId, undefined, auth, discoveryOptions)
      } catch (err) {
        throw mapOidcError(err, { issuer: input.issuer, during: 'discovery' })
      }
      // Verify ID token signatures against the provider's JWKS, not just their claims.
      client.enableNonRepudiationChecks(config)
      quirks.deviceEndpoint = config.serverMetadata().device_authorization_endpoint
      return session(config, input.issuer)
    },
  }
}

/**
 * Google's device endpoint answers `verification_url` where RFC 8628 §3.2 says `verification_uri`; openid-client
 * rightly rejects that. This fetch renames the field in that one response, so Google works without loosening any check.
 */
function googleDeviceQuirk(base: typeof fetch): { fetch: typeof fetch; deviceEndpoint: string | undefined } {
  const state: { fetch: typeof fetch; deviceEndpoint: string | undefined } = {
    deviceEndpoint: undefined,
    fetch: async (input, init) => {
      const res = await base(input, init)
      const url = input instanceof Request ? input.url : String(input)
      if (state.deviceEndpoint === undefined || url !== state.deviceEndpoint || !res.ok) return res
      const body = (await res
        .clone()
        .json()
        .catch(() => undefined)) as Record<string, unknown> | undefined
      if (!body || typeof body.verification_url !== 'string' || body.verification_uri !== undefined) return res
      const { verification_url: verificationUrl, ...rest } = body
      return new Response(JSON.stringify({ ...rest, verification_uri: verificationUrl }), { status: res.status, headers: res.headers })
    },
  }
  return state
}

function parseIssuer(issuer: string): URL {
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    throw new JitError(ErrorCode.USAGE, `invalid issuer URL "${issuer}"`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new JitError(ErrorCode.USAGE, `invalid issuer URL "${issuer}": only https is supported`)
  }
  return url
}

function session(config: client.Configuration, issuer: string): ProviderSession {
  const meta = config.serverMetadata()
  const info = {
    issuer: meta.issuer,
    ...(meta.device_authorization_endpoint ? { deviceAuthorizationEndpoint: meta.device_authorization_endpoint } : {}),
    ...(meta.authorization_endpoint ? { authorizationEndpoint: meta.authorization_endpoint } : {}),
    ...(meta.revocation_endpoint ? { revocationEndpoint: meta.revocation_endpoint } : {}),
    ...(meta.token_endpoint ? { tokenEndpoint: meta.token_endpoint } : {}),
  }
  return {
    info,
    async authorizationUrl(request): Promise<URL> {
      if (!meta.authorization_endpoint) {
        throw new JitError(ErrorCode.IDP_ERROR, `the provider "${issuer}" has no authorization endpoint`, { hint: 'use --flow device' })
      }
      const params = new URLSearchParams(request.parameters)
      params.set('redirect_uri', request.redirectUri)
      params.set('response_type', 'code')
      params.set('state', request.state)
      params.set('nonce', request.nonce)
      params.set('code_challenge', await client.calculatePKCECodeChallenge(request.codeVerifier))
      params.set('code_challenge_method', 'S256')
      try {
        if (meta.pushed_authorization_request_endpoint) return await client.buildAuthorizationUrlWithPAR(config, params)
        if (meta.require_pushed_authorization_requests) {
          throw new JitError(ErrorCode.IDP_ERROR, `the provider "${issuer}" requires pushed authorization requests but names no endpoint`)
        }
        return client.buildAuthorizationUrl(config, params)
      } catch (err) {
        throw mapOidcError(err, { issuer, during: 'the pushed authorization request' })
      }
    },
    async exchangeCode(callback, checks): Promise<TokenResponse> {
      try {
        const res = await client.authorizationCodeGrant(
          config,
          callback,
          { pkceCodeVerifier: checks.codeVerifier, expectedState: checks.expectedState, expectedNonce: checks.expectedNonce, idTokenExpected: true },
          checks.tokenParameters,
        )
        return toTokens(res)
      } catch (err) {
        throw mapOidcError(err, { issuer, during: 'the authorization code exchange' })
      }
    },
    async refresh(refreshToken, parameters): Promise<TokenResponse> {
      try {
        return toTokens(await client.refreshTokenGrant(config, refreshToken, parameters))
      } catch (err) {
        throw mapOidcError(err, { issuer, during: 'the refresh' })
      }
    },
    async revoke(token, hint): Promise<boolean> {
      if (!meta.revocation_endpoint) return false
      try {
        await client.tokenRevocation(config, token, { token_type_hint: hint })
        return true
      } catch (err) {
        throw mapOidcError(err, { issuer, during: 'the revocation' })
      }
    },
    async clientCredentials(parameters): Promise<TokenResponse> {
      try {
        return toTokens(await client.clientCredentialsGrant(config, parameters))
      } catch (err) {
        throw mapOidcError(err, { issuer, during: 'the client credentials request' })
      }
    },
    async tokenExchange(parameters): Promise<TokenResponse> {
      try {
        return toTokens(await client.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, parameters))
      } catch (err) {
        throw mapOidcError(err, { issuer, during: 'the token exchange' })
      }
    },
    async startDeviceAuthorization(parameters): Promise<DeviceAuthorization> {
      if (!meta.device_authorization_endpoint) {
        throw new JitError(ErrorCode.IDP_ERROR, `the provider "${issuer}" does not offer the device flow`, {
          hint: 'enable the device authorization grant for this client at the provider, or use another --flow',
        })
      }
      let res: client.DeviceAuthorizationResponse
      try {
        res = await client.initiateDeviceAuthorization(config, parameters)
      } catch (err) {
        throw mapOidcError(err, { issuer, during: 'device authorization' })
      }
      return {
        deviceCode: res.device_code,
        userCode: res.user_code,
        verificationUri: res.verification_uri,
        ...(typeof res.verification_uri_complete === 'string' ? { verificationUriComplete: res.verification_uri_complete } : {}),
        expiresIn: res.expires_in,
        ...(typeof res.interval === 'number' ? { interval: res.interval } : {}),
      }
    },
    async pollDeviceToken(deviceCode, parameters): Promise<DevicePollResult> {
      try {
        const res = await client.genericGrantRequest(config, DEVICE_GRANT, withParam(parameters, 'device_code', deviceCode))
        return { status: 'ok', tokens: toTokens(res) }
      } catch (err) {
        if (err instanceof client.ResponseBodyError) {
          if (err.error === 'authorization_pending') return { status: 'pending' }
          if (err.error === 'slow_down') return { status: 'slow_down' }
        }
        const retryAfter = retryAfterSeconds(err)
        if (retryAfter !== undefined) return { status: 'retry_after', seconds: retryAfter }
        throw mapOidcError(err, { issuer, during: 'the token request' })
      }
    },
  }
}

function retryAfterSeconds(err: unknown): number | undefined {
  const response = err instanceof client.ClientError ? err.cause : undefined
  if (!(response instanceof Response) || response.status !== 503) return undefined
  const header = response.headers.get('retry-after')
  if (header === null) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 60)
  const date = Date.parse(header)
  // An HTTP-date is wall-clock time on the server, so it is compared with the wall clock, not jit's injected one.
  // eslint-disable-next-line no-restricted-syntax
  return Number.isNaN(date) ? undefined : Math.min(Math.max(0, (date - Date.now()) / 1000), 60)
}

function toTokens(res: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): TokenResponse {
  if (typeof res.access_token !== 'string' || res.access_token === '') {
    throw new JitError(ErrorCode.INVALID_RESPONSE, 'the token response has no access_token')
  }
  const claims = res.claims()
  return {
    accessToken: res.access_token,
    tokenType: typeof res.token_type === 'string' ? res.token_type.toLowerCase() : 'bearer',
    ...(typeof res.expires_in === 'number' ? { expiresIn: res.expires_in } : {}),
    ...(typeof res.scope === 'string' ? { scope: res.scope } : {}),
    ...(typeof res.id_token === 'string' ? { idToken: res.id_token } : {}),
    ...(typeof res.refresh_token === 'string' ? { refreshToken: res.refresh_token } : {}),
    ...(claims ? { idClaims: { ...claims } } : {}),
  }
}

function withParam(parameters: URLSearchParams, name: string, value: string): URLSearchParams {
  const copy = new URLSearchParams(parameters)
  copy.set(name, value)
  return copy
}
