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

/** A discovered provider for one client. */
export interface ProviderSession {
  readonly info: ProviderInfo
  /** RFC 8628 §3.1. */
  startDeviceAuthorization(parameters: URLSearchParams): Promise<DeviceAuthorization>
  /**
   * One token request with the device code. Throws `JIT_ACCESS_DENIED` (§3.5 `access_denied`),
   * `JIT_DEVICE_CODE_EXPIRED` (`expired_token`) or `JIT_IDP_ERROR`.
   */
  pollDeviceToken(deviceCode: string, parameters: URLSearchParams, signal?: AbortSignal): Promise<DevicePollResult>
}

/** Input of {@link OidcPort.discover}. */
export interface DiscoverInput {
  issuer: string
  clientId: string
  clientSecret?: string
  /** Allow plain http, only ever for a loopback issuer the user opted in for. */
  allowInsecureLoopback: boolean
  signal?: AbortSignal
}

/** The provider adapter. */
export interface OidcPort {
  /**
   * Fetches and checks the discovery document. Throws `JIT_DISCOVERY_FAILED` (missing, malformed) or
   * `JIT_ISSUER_MISMATCH` (the document names another issuer).
   */
  discover(input: DiscoverInput): Promise<ProviderSession>
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
