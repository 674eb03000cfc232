/**
 * Types for `local-provider.mjs` (TypeScript does not read the JSDoc of a .mjs file without `allowJs`). Keep in step
 * with the JSDoc there.
 */

export declare const DB_RESOURCE: 'urn:jit:db'
export declare const DB_SCOPES: readonly ['db:read', 'db:write']
/**
 * The second resource server (an HTTP API): JWT access tokens with `aud` = this.
 *
 * Two resources in one authorization or device request (`resource` twice, or no `resource` and scopes of both) is one
 * login whose grant covers both, but every token request yields ONE access token, for ONE resource: name it with
 * `resource` at the token endpoint. Without it the request is ambiguous → `invalid_target`, and the code (or, at a
 * refresh, the refresh token, rotated before the check) is spent. The token for the other resource comes from a
 * refresh with `resource` = that one (so: with `offline_access`), or else from a second login.
 */
export declare const API_RESOURCE: 'urn:jit:api'
export declare const API_SCOPES: readonly ['api:read', 'api:write']
/** `acr_values_supported`: password only, and password + MFA. Any other `acr` can still be scripted. */
export declare const ACR_VALUES: readonly ['urn:jit:loa:1', 'urn:jit:loa:2']
/** The `acr` of a login unless `UserAgentOptions.acr` says otherwise. */
export declare const DEFAULT_ACR: 'urn:jit:loa:1'
/** The `amr` of a login unless `UserAgentOptions.amr` says otherwise. */
export declare const DEFAULT_AMR: readonly ['pwd']
export declare const CLI_CLIENT_ID: 'jit-cli'
export declare const CI_CLIENT_ID: 'jit-ci'
export declare const CI_CLIENT_SECRET: 'jit-ci-secret'
export declare const CI_JWT_CLIENT_ID: 'jit-ci-jwt'
export declare const TOKEN_EXCHANGE_GRANT: 'urn:ietf:params:oauth:grant-type:token-exchange'
export declare const SUBJECT_TOKEN_TYPES: readonly [
  'urn:ietf:params:oauth:token-type:id_token',
  'urn:ietf:params:oauth:token-type:jwt',
]
export declare const ACCESS_TOKEN_TYPE: 'urn:ietf:params:oauth:token-type:access_token'
export declare const CLI_REDIRECT_URI: 'http://127.0.0.1/callback'

export interface UserAgentOptions {
  /** The login to sign in with; any value works and the password is ignored. Default `'alice'`. */
  accountId?: string
  /** Abort instead of approving. Default false. */
  deny?: boolean
  /**
   * The login's `acr`, carried into the ID token (and into ID tokens from refreshes). Default `'urn:jit:loa:1'`. Any
   * non-empty string: the provider never raises it to match `acr_values` (a request for `urn:jit:loa:2` answered
   * with a loa:1 login still gets tokens, with `acr` loa:1: the client must check).
   */
  acr?: string
  /** The login's `amr`, e.g. `['pwd', 'otp']` for MFA. Default `['pwd']`. */
  amr?: readonly string[]
  /**
   * When the person signed in, in epoch seconds (default: now): the ID token's `auth_time`. Set it older than the
   * request's `max_age` to get an ID token the client must refuse (the provider does not re-prompt, because the login
   * happens in the same interaction).
   */
  authTime?: number
}

/**
 * A CI system's OIDC issuer whose tokens the token-exchange grant accepts as `subject_token`.
 *
 * Scope rule: the workload is the subject token's `repository` claim (GitHub Actions) or else its `project_path`
 * (GitLab CI). `allow[workload]` (or else `allow['*']`) lists the most scopes it may get; neither → `invalid_grant`.
 * The issued scope = requested scope (default: all allowed) ∩ allowed ∩ `DB_SCOPES`, in the requested order; an empty
 * result → `invalid_scope`.
 */
export interface TrustedCiIssuer {
  /** The issuer's `iss`, compared exactly. */
  issuer: string
  /** Its public signing keys. */
  jwks: { keys: object[] }
  /** The `aud` its tokens must carry (any one of them, when a list). */
  audience: string | string[]
  /** Workload (`repository` / `project_path` value, or `'*'` for any) → the most scopes. Default `{ '*': DB_SCOPES }`. */
  allow?: Record<string, string[]>
}

export interface LocalProviderOptions {
  /** Port on 127.0.0.1; 0 (default) = any free one. */
  port?: number
  /** `interval` (seconds, may be fractional) added to the device authorization response. Default 1. */
  deviceInterval?: number
  /** Lifetime of a device code in seconds. Default 600. */
  deviceCodeTtl?: number
  /** Default and maximum access-token lifetime in seconds. Default 3600. */
  accessTokenTtl?: number
  /**
   * Lifetime of a refresh token in seconds. Default 86400 (1 day). `jit-cli` refresh tokens rotate on every use, and
   * each new one gets this lifetime again (the grant itself lasts 14 days).
   */
  refreshTokenTtl?: number
  /**
   * Scopes added to every issued access token (JWT `scope` claim, introspection, the token response's `scope`):
   * an over-broad grant on purpose. Default none; change it with `setGrantExtraScopes`.
   */
  grantExtraScopes?: string[]
  /** Token-endpoint form parameter asking for a shorter access-token lifetime (seconds). Default `'ttl'`. */
  ttlParam?: string
  /** Strip `expires_in` from token-endpoint responses. Default false. */
  omitExpiresIn?: boolean
  /** Silence oidc-provider's WARNING/NOTICE console lines. Default true. */
  quiet?: boolean
  /** CI issuers trusted by the token-exchange grant (more with `trustCiIssuer`). Default none. */
  trustedCiIssuers?: TrustedCiIssuer[]
}

/** An RFC 7662 introspection response. */
export interface IntrospectionResponse {
  active: boolean
  scope?: string
  client_id?: string
  sub?: string
  exp?: number
  iat?: number
  aud?: string | string[]
  token_type?: string
  [claim: string]: unknown
}

export type KoaMiddleware = (ctx: unknown, next: () => Promise<void>) => Promise<void> | void

/** The parts of the oidc-provider instance tests are likely to use; the rest is reachable by index. */
export interface OidcProvider {
  readonly issuer: string
  use(middleware: KoaMiddleware): void
  registerGrantType(
    name: string,
    handler: KoaMiddleware,
    parameters?: string | string[] | Set<string>,
    allowedDuplicateParameters?: string | string[] | Set<string>,
  ): void
  [key: string]: unknown
}

export interface LocalProvider {
  /** `http://127.0.0.1:PORT` */
  readonly issuer: string
  readonly port: number
  /** `jit-cli`, the public native client (device flow, authorization code + PKCE, refresh tokens). */
  readonly clientId: string
  /**
   * `jit-ci`, the confidential client for client_credentials and token exchange. Registered as `client_secret_basic`;
   * oidc-provider 8 accepts `client_secret_post` from it too.
   */
  readonly ciClientId: string
  readonly ciClientSecret: string
  /** `jit-ci-jwt`: client_credentials and token exchange with `private_key_jwt` (RS256) client authentication. */
  readonly ciJwtClientId: string
  /** The PKCS#8 PEM private key of `jit-ci-jwt` (RSA), generated at start. */
  readonly ciPrivateKeyPem: string
  /** The `kid` of that key in `jit-ci-jwt`'s registered `jwks` (put it in the client assertion's header). */
  readonly ciKeyId: string
  /** Trusts a CI issuer for token exchange from now on; an entry for the same `issuer` is replaced. */
  trustCiIssuer(entry: TrustedCiIssuer): void
  /** The `issuer` of every trusted CI issuer; a copy. */
  readonly trustedCiIssuers: string[]
  /** `urn:jit:db` */
  readonly resource: string
  /** `urn:jit:api` */
  readonly apiResource: string
  /** The scopes added to every access token issued from now on; a copy. */
  readonly grantExtraScopes: string[]
  /** Replaces them (`[]` = none). Tokens already issued keep their scope. */
  setGrantExtraScopes(scopes: string[]): void
  /** The HTTP status of `GET /me` with `accessToken` as Bearer: 200 for a live opaque token, 401 once revoked. */
  userinfo(accessToken: string): Promise<number>
  /**
   * RFC 7662 introspection as `jit-ci` (which may introspect any client's tokens). Opaque access tokens and refresh
   * tokens only: a JWT access token is always `{ active: false }` here, valid or not (oidc-provider 8 does not look
   * JWTs up).
   */
  introspect(token: string, tokenTypeHint?: 'access_token' | 'refresh_token'): Promise<IntrospectionResponse>
  /** The public signing keys. */
  readonly publicJwks: { keys: Array<Record<string, string>> }
  readonly provider: OidcProvider
  /** POSTs to the token endpoint (any grant, errors included) since start or the last `resetCounters()`. */
  readonly tokenRequests: number
  /** The same by `grant_type` (`'unknown'` when absent); a copy. */
  readonly tokenRequestsByGrant: Record<string, number>
  resetCounters(): void
  /** The next `n` (default 1) device-code token polls get `400 slow_down`. */
  slowDownNext(n?: number): void
  /**
   * Opens `verification_uri_complete`, confirms the code, logs in (with `opts.acr`/`amr`/`authTime`) and consents to
   * everything asked, `offline_access` included (or aborts at the confirm step).
   */
  approveDevice(verificationUriComplete: string, opts?: UserAgentOptions): Promise<void>
  /**
   * Follows an authorization URL through login (with `opts.acr`/`amr`/`authTime`) and consent to everything asked (or
   * cancels at login) and resolves to the redirect to the client (`...callback?code=...&state=...&iss=...` or
   * `?error=access_denied...`), which it does not request. A fresh cookie jar each time: no session is reused.
   */
  authorize(authorizationUrl: string, opts?: UserAgentOptions): Promise<string>
  /** Closes the server and every open connection. */
  close(): Promise<void>
}

export declare function startLocalProvider(opts?: LocalProviderOptions): Promise<LocalProvider>
