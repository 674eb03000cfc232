import { ErrorCode, JitError, isJitError } from '../errors.js'
import type { Clock, Sleep } from '../platform/clock.js'
import type { SecretStore } from '../store/secret-store.js'
import { tokenFingerprint } from '../store/cache-key.js'
import { saveCredential, type CacheDeps, type Credential } from './credential-cache.js'
import { readJwtExp } from './jwt.js'
import { randomBytes } from 'node:crypto'
import type { Browser, CredentialMeta, DeviceAuthorization, LoopbackPort, OidcPort, ProviderSession, TokenResponse } from './ports.js'
import { requestKey, type CredentialRequest } from './request.js'
import { missingScopes, normalizeScopes } from './scopes.js'
import { computeDeadline, isUsable } from './token-policy.js'

/** What a login shows a person (or a wrapper, with `--json`) while it runs. */
export interface LoginReporter {
  /** The provider is known and the login starts with `flow`. */
  started(info: { flow: 'device' | 'pkce'; issuer: string }): void
  /** Browser flow: the URL the person must open, and where the provider will send them back. */
  authorizationRequest?(info: { url: string; redirectUri: string; willOpen: boolean }): void
  /** RFC 8628 §3.3: show the code and where to enter it; `expiresAt` is epoch ms. */
  deviceAuthorization(info: { userCode: string; verificationUri: string; verificationUriComplete?: string; expiresIn: number; expiresAt: number }): void
  /** The browser was (or could not be) opened on `url`. */
  browser(result: { url: string; opened: true } | { url: string; opened: false; reason: string }): void
  /** Waiting is over, whichever way it ended. */
  stopped(): void
  warn(message: string): void
}

/** Options of the browser flow (authorization code + PKCE on a loopback redirect). */
export interface PkceOptions {
  /** 0 = any free port (RFC 8252 §7.3); a fixed one for providers that register exact redirect URIs. */
  port: number
  host: '127.0.0.1' | 'localhost'
}

/** Input of {@link login}. */
export interface LoginInput {
  request: CredentialRequest
  /** `device` (RFC 8628) or `pkce` (RFC 7636 + RFC 8252); `auto` is resolved by the caller. */
  flow: 'device' | 'pkce'
  pkce?: PkceOptions
  /** The whole login ends with `JIT_LOGIN_TIMEOUT` after this long (ms). */
  timeoutMs?: number
  clientSecret?: string
  allowInsecureLoopback: boolean
  /** Token-endpoint parameter that carries the TTL in seconds (profile `ttl-param`). */
  ttlParam?: string
  /** Open the verification page in a browser (off with `--no-browser`, over SSH, or with no display). */
  openBrowser: boolean
  signal?: AbortSignal
  reporter: LoginReporter
}

/** Result of {@link login}. */
export interface LoginResult {
  credential: Credential
  /** Requested access scopes the provider did not grant. */
  notGranted: string[]
  /** False with `--store none`. */
  stored: boolean
}

/** Dependencies of {@link login}. */
export type LoginDeps = CacheDeps & {
  clock: Clock
  sleep: Sleep
  oidc: () => Promise<OidcPort>
  browser: () => Promise<Browser>
  loopback: () => Promise<LoopbackPort>
  store: SecretStore
}

const DEVICE_GRANT_DEFAULT_INTERVAL = 5

/**
 * Logs in with the device authorization grant (RFC 8628) or the authorization code grant with PKCE on a loopback
 * redirect (RFC 7636, RFC 8252), then caches the credential under the deadline rule.
 *
 * The store is probed before anything else, so a person never approves a login whose result cannot be kept. An abort
 * of `signal` ends it with `JIT_INTERRUPTED`, the timeout with `JIT_LOGIN_TIMEOUT`; either way nothing is stored.
 */
export async function login(deps: LoginDeps, input: LoginInput): Promise<LoginResult> {
  const { request, reporter } = input
  await deps.store.probe()
  const limit = withTimeout(deps.sleep, input.timeoutMs, input.signal)
  const signal = limit.signal
  try {
    throwIfAborted(signal)
    const oidc = await deps.oidc()
    const session = await raceAbort(
      oidc.discover({
        issuer: request.issuer,
        clientId: request.clientId,
        allowInsecureLoopback: input.allowInsecureLoopback,
        ...(input.clientSecret ? { clientSecret: input.clientSecret } : {}),
      }),
      signal,
    )
    throwIfAborted(signal)
    reporter.started({ flow: input.flow, issuer: session.info.issuer })

    const tokenParams = new URLSearchParams()
    // RFC 8707 §2.2: one access token per resource. With several, the grant covers all and this token is for the
    // first; providers answer invalid_target to several at the token endpoint.
    if (request.resources[0] !== undefined) tokenParams.set('resource', request.resources[0])
    if (request.resources.length > 1) reporter.warn(`the access token is for ${request.resources[0]}; ask for the others with their own login`)
    if (request.authorizationDetails) tokenParams.set('authorization_details', request.authorizationDetails)
    if (input.ttlParam) tokenParams.set(input.ttlParam, String(Math.floor(request.ttlMs / 1000)))

    const tokens =
      input.flow === 'pkce'
        ? await browserFlow(deps, input, session, tokenParams, signal)
        : await deviceFlow(deps, input, session, tokenParams, signal)
    const result = await finish(deps, input, tokens)
    return result
  } finally {
    limit.dispose()
    reporter.stopped()
  }
}

function authorizationParameters(request: CredentialRequest): URLSearchParams {
  const params = new URLSearchParams({ scope: request.scopes.join(' ') })
  for (const r of request.resources) params.append('resource', r)
  if (request.audience) params.set('audience', request.audience)
  if (request.authorizationDetails) params.set('authorization_details', request.authorizationDetails)
  if (request.acrValues) params.set('acr_values', request.acrValues)
  if (request.maxAuthAgeSec !== undefined) params.set('max_age', String(request.maxAuthAgeSec))
  return params
}

async function deviceFlow(
  deps: LoginDeps,
  input: LoginInput,
  session: ProviderSession,
  tokenParams: URLSearchParams,
  signal: AbortSignal,
): Promise<TokenResponse> {
  const { reporter } = input
  const device = await raceAbort(session.startDeviceAuthorization(authorizationParameters(input.request)), signal)
  checkVerificationUri(device)
  const expiresAt = deps.clock.now() + device.expiresIn * 1000
  reporter.deviceAuthorization({
    userCode: device.userCode,
    verificationUri: device.verificationUri,
    ...(device.verificationUriComplete ? { verificationUriComplete: device.verificationUriComplete } : {}),
    expiresIn: device.expiresIn,
    expiresAt,
  })
  if (input.openBrowser) await openQuietly(deps, reporter, device.verificationUriComplete ?? device.verificationUri)
  return pollForTokens(deps, session.pollDeviceToken.bind(session), device, tokenParams, expiresAt, signal)
}

async function browserFlow(
  deps: LoginDeps,
  input: LoginInput,
  session: ProviderSession,
  tokenParams: URLSearchParams,
  signal: AbortSignal,
): Promise<TokenResponse> {
  const { reporter } = input
  const options = input.pkce ?? { port: 0, host: '127.0.0.1' as const }
  const loopback = await deps.loopback()
  // The listener is up before the browser opens, so even an instant redirect finds it.
  const listener = await loopback.listen({
    port: options.port,
    host: options.host,
    path: '/callback',
    onRejected: (reason) => reporter.warn(`refused a callback: ${reason}`),
  })
  try {
    const state = randomToken()
    const nonce = randomToken()
    const codeVerifier = randomToken(48)
    const url = await raceAbort(
      session.authorizationUrl({ redirectUri: listener.redirectUri, parameters: authorizationParameters(input.request), state, nonce, codeVerifier }),
      signal,
    )
    reporter.authorizationRequest?.({ url: url.href, redirectUri: listener.redirectUri, willOpen: input.openBrowser })
    if (input.openBrowser) await openQuietly(deps, reporter, url.href)
    const callback = await listener.next(
      (u) => (u.searchParams.get('state') === state ? undefined : u.searchParams.has('state') ? 'a callback with a wrong state' : 'a callback without state'),
      signal,
    )
    try {
      const tokens = await raceAbort(
        session.exchangeCode(callback.url, { expectedState: state, expectedNonce: nonce, codeVerifier, tokenParameters: tokenParams }),
        signal,
      )
      callback.respond({ ok: true, title: 'Signed in', message: 'jit has your credential. You can close this tab and return to the terminal.' })
      return tokens
    } catch (err) {
      const message = err instanceof JitError ? err.message : 'the sign-in could not be completed'
      callback.respond({ ok: false, title: 'Sign-in failed', message: `${message}. Return to your terminal for details.` })
      throw err
    }
  } finally {
    await listener.close()
  }
}

/** What {@link finish} needs to know about the login that got `tokens`. */
export interface FinishInput {
  request: CredentialRequest
  flow: string
  reporter: Pick<LoginReporter, 'warn'>
  signal?: AbortSignal
}

/**
 * Turns a token response into a cached credential: the deadline rule, the granted-scope check, the refresh-token
 * rule, then the store (unless `--store none`). Shared by every flow.
 */
export async function finish(deps: Pick<LoginDeps, 'clock' | 'store' | 'storeFor' | 'state' | 'warn'>, input: FinishInput, tokens: TokenResponse): Promise<LoginResult> {
  const { request, reporter } = input
  const obtainedAt = deps.clock.now()
  const jwtExp = readJwtExp(tokens.accessToken)
  const bound = computeDeadline({
    obtainedAt,
    ttlMs: request.ttlMs,
    ...(request.maxTtlMs !== undefined ? { maxTtlMs: request.maxTtlMs } : {}),
    ...(jwtExp !== undefined ? { jwtExp } : {}),
    ...(tokens.expiresIn !== undefined ? { expiresIn: tokens.expiresIn } : {}),
  })
  if (!bound || !isUsable(bound.deadline, obtainedAt, 0, 0)) {
    throw new JitError(ErrorCode.INVALID_RESPONSE, 'the provider issued a token that has already expired', {
      hint: 'check the clock of this machine and of the provider',
    })
  }

  const scopes = tokens.scope !== undefined ? normalizeScopes([tokens.scope]) : request.scopes
  const extra = missingScopes(scopes, request.scopes)
  if (extra.length > 0 && !request.allowBroaderGrant) {
    // Least privilege: more than was asked for is refused, not stored.
    throw new JitError(ErrorCode.ACCESS_DENIED, `the provider granted more than was asked for (${extra.join(' ')}); refused and not stored`, {
      hint: `ask the provider's administrator to narrow the grant, or accept it: jit config set ${request.profile} allow-broader-grant true`,
    })
  }
  const notGranted = missingScopes(request.scopes, scopes)
  if (notGranted.length > 0) reporter.warn(`the provider did not grant: ${notGranted.join(' ')}`)
  checkAuthentication(request, tokens, obtainedAt)

  const sub = tokens.idClaims?.sub
  const meta: CredentialMeta = {
    key: requestKey(request),
    profile: request.profile,
    issuer: request.issuer,
    clientId: request.clientId,
    requestedScopes: request.scopes,
    scopes,
    resources: request.resources,
    ...(request.audience ? { audience: request.audience } : {}),
    obtainedAt,
    deadline: bound.deadline,
    cappedBy: bound.cappedBy,
    loginDeadline: obtainedAt + Math.min(request.ttlMs, request.maxTtlMs ?? Infinity),
    ...(tokens.refreshToken && request.allowRefresh === true ? { refreshable: true } : {}),
    store: deps.store.kind,
    fingerprint: tokenFingerprint(tokens.accessToken),
    ...(typeof sub === 'string' ? { subject: sub } : {}),
    flow: input.flow,
  }
  const credential: Credential = {
    meta,
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    ...(tokens.idToken ? { idToken: tokens.idToken } : {}),
    // DESIGN.md §3: no refresh token unless the profile allows refresh; one a provider hands out anyway is dropped.
    ...(tokens.refreshToken && request.allowRefresh === true ? { refreshToken: tokens.refreshToken } : {}),
  }
  // A Ctrl-C that arrives while the tokens were on their way still means "stop": nothing is stored.
  throwIfAborted(input.signal)
  const stored = deps.store.kind !== 'none'
  if (stored) await saveCredential(deps, credential)
  return { credential, notGranted, stored }
}

/**
 * MFA and fresh sign-in (OIDC Core §2, §3.1.2.1): the verified ID token's `acr`, `amr` and `auth_time` must satisfy the
 * profile's requirements, else the credential is refused (`JIT_ACCESS_DENIED`, exit 5) and not stored.
 */
function checkAuthentication(request: CredentialRequest, tokens: TokenResponse, now: number): void {
  const claims = tokens.idClaims
  const needsIdToken = (request.requireAcr?.length ?? 0) > 0 || (request.requireAmr?.length ?? 0) > 0 || request.maxAuthAgeSec !== undefined
  if (!needsIdToken) return
  const refuse = (why: string): never => {
    throw new JitError(ErrorCode.ACCESS_DENIED, `the sign-in does not meet the profile's requirements: ${why}; refused and not stored`, {
      hint: 'sign in again with the required method (for example with MFA)',
    })
  }
  if (!claims) refuse('the provider sent no ID token to check')
  const acr = typeof claims?.acr === 'string' ? claims.acr : undefined
  if (request.requireAcr?.length && (acr === undefined || !request.requireAcr.includes(acr))) {
    refuse(`acr is ${acr === undefined ? 'missing' : `"${acr}"`}, required: ${request.requireAcr.join(' or ')}`)
  }
  const amr = Array.isArray(claims?.amr) ? claims.amr.filter((x): x is string => typeof x === 'string') : []
  const lacking = (request.requireAmr ?? []).filter((m) => !amr.includes(m))
  if (lacking.length) refuse(`amr lacks ${lacking.join(', ')} (has ${amr.length ? amr.join(', ') : 'none'})`)
  if (request.maxAuthAgeSec !== undefined) {
    const authTime = typeof claims?.auth_time === 'number' ? claims.auth_time : undefined
    if (authTime === undefined) refuse('auth_time is missing')
    // Clock skew between this machine and the provider: a minute of grace, as openid-client allows.
    else if (now / 1000 - authTime > request.maxAuthAgeSec + 60) refuse(`the sign-in is ${Math.round(now / 1000 - authTime)}s old, max age ${request.maxAuthAgeSec}s`)
  }
}

/** A URL-safe random string (base64url of `bytes` random bytes). */
function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url')
}

/** An abort signal that fires on the parent's abort or after `ms`, whichever comes first. */
function withTimeout(sleep: Sleep, ms: number | undefined, parent: AbortSignal | undefined): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController()
  const onParent = (): void => controller.abort(parent?.reason)
  if (parent?.aborted) controller.abort(parent.reason)
  else parent?.addEventListener('abort', onParent, { once: true })
  const stopTimer = new AbortController()
  if (ms !== undefined) {
    sleep(ms, stopTimer.signal).then(
      () =>
        controller.abort(
          new JitError(ErrorCode.LOGIN_TIMEOUT, `the login did not complete within ${Math.round(ms / 1000)}s`, {
            hint: 'run the login again, or give more time with --timeout',
          }),
        ),
      () => {},
    )
  }
  return {
    signal: controller.signal,
    dispose: () => {
      stopTimer.abort()
      parent?.removeEventListener('abort', onParent)
    },
  }
}

/** Settles with `promise`, or rejects as soon as `signal` aborts (the work itself may go on; its result is ignored). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(interrupted(signal))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(interrupted(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

async function pollForTokens(
  deps: Pick<LoginDeps, 'clock' | 'sleep'>,
  poll: ProviderSession['pollDeviceToken'],
  device: DeviceAuthorization,
  params: URLSearchParams,
  expiresAt: number,
  signal: AbortSignal | undefined,
): Promise<TokenResponse> {
  let intervalMs = (device.interval ?? DEVICE_GRANT_DEFAULT_INTERVAL) * 1000
  let waitMs = intervalMs
  for (;;) {
    await sleepOrInterrupt(deps.sleep, waitMs, signal)
    if (deps.clock.now() >= expiresAt) {
      throw new JitError(ErrorCode.DEVICE_CODE_EXPIRED, 'the device code expired before the login was approved', {
        hint: 'run the login again and approve it sooner',
      })
    }
    const result = await poll(device.deviceCode, params, signal)
    switch (result.status) {
      case 'ok':
        return result.tokens
      case 'pending':
        waitMs = intervalMs
        break
      case 'slow_down':
        // RFC 8628 §3.5: the interval grows by 5 seconds for this and all later requests.
        intervalMs += 5000
        waitMs = intervalMs
        break
      case 'retry_after':
        waitMs = Math.max(intervalMs, result.seconds * 1000)
        break
    }
  }
}

async function sleepOrInterrupt(sleep: Sleep, ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, signal)
  } catch (err) {
    if (signal?.aborted) throw interrupted(signal)
    throw err
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  // The caller's own abort (Ctrl-C) after the timeout fired still reads as what it was.
  if (signal?.aborted) throw interrupted(signal)
}

function interrupted(signal: AbortSignal): JitError {
  return isJitError(signal.reason) ? signal.reason : new JitError(ErrorCode.INTERRUPTED, 'interrupted; nothing was stored')
}

function checkVerificationUri(device: DeviceAuthorization): void {
  for (const uri of [device.verificationUri, device.verificationUriComplete]) {
    if (uri === undefined) continue
    let url: URL | undefined
    try {
      url = new URL(uri)
    } catch {
      url = undefined
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      throw new JitError(ErrorCode.UNSAFE_URL, 'the provider sent a verification URI that is not http(s); it was not opened', {
        hint: 'report this to the provider administrator',
      })
    }
  }
}

async function openQuietly(deps: Pick<LoginDeps, 'browser'>, reporter: LoginReporter, url: string): Promise<void> {
  try {
    const browser = await deps.browser()
    await browser.open(new URL(url))
    reporter.browser({ url, opened: true })
  } catch (err) {
    reporter.browser({ url, opened: false, reason: err instanceof Error ? err.message : String(err) })
  }
}
