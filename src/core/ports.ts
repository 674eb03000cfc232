/**
 * The ports core code talks through. `src/oidc` implements {@link OidcPort} on top of openid-client; tests implement
 * it with fakes. Wire names (`expires_in`) stop at the adapter: the domain says `expiresIn`.
 */

/** What a login needs to know about a provider, from its discovery document. */
export interface ProviderInfo {
  issuer: string
  deviceAuthorizationEndpoint?: string
  authorizationEndpoint?: string
  revocationEndpoint?: string
  tokenEndpoint?: string
}

/** A successful token-endpoint response, translated. */
export interface TokenResponse {
  accessToken: string
  tokenType: string
  /** Seconds, when the provider said. */
  expiresIn?: number
  /** Space-separated scopes the provider granted, when it said. */
  scope?: string
  idToken?: string
  refreshToken?: string
  /** Claims of the verified ID token. */
  idClaims?: Record<string, unknown>
}

/** An RFC 8628 §3.2 device authorization response, translated. */
export interface DeviceAuthorization {
  deviceCode: string
  userCode: string
  verificationUri: string
  verificationUriComplete?: string
  /** Seconds the device code lives. */
  expiresIn: number
  /** Seconds between polls, when the provider said. */
  interval?: number
}

/** One poll of the token endpoint (RFC 8628 §3.4/§3.5). */
export type DevicePollResult =
  | { status: 'pending' }
  | { status: 'slow_down' }
  | { status: 'retry_after'; seconds: number }
  | { status: 'ok'; tokens: TokenResponse }

/** What an authorization request (RFC 6749 §4.1.1 + PKCE + OIDC) carries. */
export interface AuthorizationRequest {
  redirectUri: string
  /** Authorization parameters: scope, resource (repeatable), audience, acr_values, ... */
  parameters: URLSearchParams
  state: string
  nonce: string
  /** RFC 7636 code verifier; the S256 challenge is derived from it. */
  codeVerifier: string
}

/** The checks applied to the redirect back from the provider. */
export interface CallbackChecks {
  expectedState: string
  expectedNonce: string
  codeVerifier: string
  /** Sent again to the token endpoint (resource indicators, TTL parameter). */
  tokenParameters: URLSearchParams
}

/** A discovered provider for one client. */
export interface ProviderSession {
  readonly info: ProviderInfo
  /**
   * The URL to send the browser to. Uses a pushed authorization request (RFC 9126) when the provider offers one, and
   * always when it requires one, so the browser URL carries only a `request_uri`.
   */
  authorizationUrl(request: AuthorizationRequest): Promise<URL>
  /** RFC 6749 §6 refresh. */
  refresh(refreshToken: string, parameters: URLSearchParams): Promise<TokenResponse>
  /** RFC 7009 revocation; resolves false when the provider has no revocation endpoint. */
  revoke(token: string, hint: 'access_token' | 'refresh_token'): Promise<boolean>
  /** RFC 6749 §4.4 client credentials grant. */
  clientCredentials(parameters: URLSearchParams): Promise<TokenResponse>
  /** RFC 8693 token exchange (`subject_token`, `subject_token_type`, ... in `parameters`). */
  tokenExchange(parameters: URLSearchParams): Promise<TokenResponse>
  /**
   * Checks the redirect (state, RFC 9207 `iss`, `error`) and redeems the code with the PKCE verifier; the ID token is
   * verified (signature, iss, aud, exp, nonce). Throws `JIT_ACCESS_DENIED` for `error=access_denied`.
   */
  exchangeCode(callback: URL, checks: CallbackChecks): Promise<TokenResponse>
  /** RFC 8628 §3.1. */
  startDeviceAuthorization(parameters: URLSearchParams): Promise<DeviceAuthorization>
  /**
   * One token request with the device code. Throws `JIT_ACCESS_DENIED` (§3.5 `access_denied`),
   * `JIT_DEVICE_CODE_EXPIRED` (`expired_token`) or `JIT_IDP_ERROR`.
   */
  pollDeviceToken(deviceCode: string, parameters: URLSearchParams, signal?: AbortSignal): Promise<DevicePollResult>
}

/** How the client authenticates at the token endpoint. Secrets are passed in, never read from config. */
export type ClientAuthSpec =
  | { method: 'none' }
  | { method: 'client_secret_post' | 'client_secret_basic'; secret: string }
  /** RFC 7523 §2.2 with the client's own key (PKCS#8 PEM). */
  | { method: 'private_key_jwt'; privateKeyPem: string; kid?: string }
  /** RFC 7523 federation (Entra ID, Google): the CI system's token itself is the client assertion. */
  | { method: 'client_assertion'; assertion: string }

/** Input of {@link OidcPort.discover}. */
export interface DiscoverInput {
  issuer: string
  clientId: string
  /** Shorthand for `client_secret_post`. */
  clientSecret?: string
  clientAuth?: ClientAuthSpec
  /** Allow plain http, only ever for a loopback issuer the user opted in for. */
  allowInsecureLoopback: boolean
}

/** The provider adapter. */
export interface OidcPort {
  /**
   * Fetches and checks the discovery document. Throws `JIT_DISCOVERY_FAILED` (missing, malformed) or
   * `JIT_ISSUER_MISMATCH` (the document names another issuer).
   */
  discover(input: DiscoverInput): Promise<ProviderSession>
}

/** What the loopback listener hands to the login: the callback URL and a way to answer the browser. */
export interface CallbackRequest {
  url: URL
  /** Answers the browser with a small page; never includes a token. */
  respond(page: { ok: boolean; title: string; message: string }): void
}

/** The RFC 8252 loopback redirect listener. */
export interface LoopbackListener {
  /** The redirect URI registered for this login (`http://127.0.0.1:PORT/callback`). */
  readonly redirectUri: string
  /**
   * Resolves with the next request on the callback path whose `state` passes `accept`; others are answered with an
   * error page, reported through `onRejected`, and waiting goes on.
   */
  next(accept: (url: URL) => string | undefined, signal: AbortSignal): Promise<CallbackRequest>
  close(): Promise<void>
}

/** Starts loopback listeners. */
export interface LoopbackPort {
  /**
   * Listens on 127.0.0.1 only. `port` 0 picks a free one. `host` is the name put in the redirect URI (`127.0.0.1`
   * or `localhost`). Throws `JIT_PORT_IN_USE` naming the port.
   */
  listen(options: { port: number; host: '127.0.0.1' | 'localhost'; path: string; onRejected: (reason: string) => void }): Promise<LoopbackListener>
}

/** Opens URLs in a browser for a person. */
export interface Browser {
  /** Opens an http(s) URL. Rejects when no browser could be started; callers then print the URL. */
  open(url: URL): Promise<void>
}

/** Non-secret facts about a cached credential: what `status` and cleanup read without unlocking the keychain. */
export interface CredentialMeta {
  /** Keychain account (`<profile>/<sha256>`). */
  key: string
  profile: string
  issuer: string
  clientId: string
  /** Scopes that were asked for (normalized). */
  requestedScopes: string[]
  /** Scopes the provider granted. */
  scopes: string[]
  resources: string[]
  audience?: string
  /** epoch ms, by jit's clock. */
  obtainedAt: number
  /** epoch ms: never handed out at or after this. */
  deadline: number
  cappedBy: 'ttl' | 'max-ttl' | 'exp' | 'expires_in'
  /** Where the secret lives. */
  store: 'keychain' | 'file' | 'none'
  /** epoch ms: the end of the login (obtainedAt of the first token + the TTL); no refresh goes past it. */
  loginDeadline?: number
  /** A refresh token is kept (in the secret), usable until `loginDeadline`. */
  refreshable?: boolean
  /** Short sha256 prefix of the access token, for the audit trail. */
  fingerprint: string
  subject?: string
  flow: string
}

/** The state file: an index of cached credentials, with no secret in it. */
export interface StateStore {
  /** All entries. A corrupt file reads as empty (with a warning through the store's own reporter). */
  list(): CredentialMeta[]
  get(key: string): CredentialMeta | undefined
  put(meta: CredentialMeta): void
  remove(keys: readonly string[]): void
}

/** What the audit trail records (issue 6). Never a token, secret or command argument. */
export type AuditEventType = 'issued' | 'used' | 'refused' | 'expired' | 'revoked' | 'login_failed'

/** One line of the audit trail (JSON Lines). */
export interface AuditEvent {
  /** ISO 8601, by jit's clock. */
  time: string
  event: AuditEventType
  profile: string
  issuer?: string
  scopes?: string[]
  resources?: string[]
  audience?: string
  /** ISO 8601 deadline of the credential concerned. */
  deadline?: string
  /** Short sha256 prefix of the access token: correlates events without revealing it. */
  fingerprint?: string
  flow?: string
  /** `token` or `exec`, for `used`. */
  via?: 'token' | 'exec'
  /** `jit exec`: the command's name only (basename), never its arguments. */
  command?: string
  /** Why jit refused, or why the login failed (an error code and message). */
  reason?: string
  /** `--reason` text given by the person (a ticket, an incident). */
  note?: string
  /** For `revoked`: what the provider did not revoke (e.g. a JWT access token valid until exp). */
  detail?: string
}

/** The append-only audit trail. */
export interface AuditLog {
  /** Appends one event; never throws (an audit failure is reported once on stderr, not fatal). */
  append(event: AuditEvent): void
}
