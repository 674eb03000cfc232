import { ErrorCode, JitError, isJitError } from '../errors.js'
import type { Clock, Sleep } from '../platform/clock.js'
import type { SecretStore } from '../store/secret-store.js'
import { tokenFingerprint } from '../store/cache-key.js'
import { saveCredential, type CacheDeps, type Credential } from './credential-cache.js'
import { readJwtExp } from './jwt.js'
import type { Browser, CredentialMeta, DeviceAuthorization, OidcPort, ProviderSession, TokenResponse } from './ports.js'
import { requestKey, type CredentialRequest } from './request.js'
import { missingScopes, normalizeScopes } from './scopes.js'
import { computeDeadline, isUsable } from './token-policy.js'

/** What a login shows a person (or a wrapper, with `--json`) while it runs. */
export interface LoginReporter {
  /** The provider is known and the login starts. */
  started(info: { flow: 'device'; issuer: string }): void
  /** RFC 8628 §3.3: show the code and where to enter it; `expiresAt` is epoch ms. */
  deviceAuthorization(info: { userCode: string; verificationUri: string; verificationUriComplete?: string; expiresIn: number; expiresAt: number }): void
  /** The browser was (or could not be) opened on `url`. */
  browser(result: { url: string; opened: true } | { url: string; opened: false; reason: string }): void
  /** Waiting is over, whichever way it ended. */
  stopped(): void
  warn(message: string): void
}

/** Input of {@link login}. */
export interface LoginInput {
  request: CredentialRequest
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
  store: SecretStore
}

const DEVICE_GRANT_DEFAULT_INTERVAL = 5

/**
 * Logs in with the device authorization grant (RFC 8628) and caches the credential.
 *
 * The store is probed before anything else, so a person never approves a login whose result cannot be kept. Polling
 * follows §3.5: wait `interval` (default 5 s) before each request, add 5 s on `slow_down`, stop on `access_denied`
 * (`JIT_ACCESS_DENIED`) or `expired_token` / local expiry of the device code (`JIT_DEVICE_CODE_EXPIRED`). An abort of
 * `signal` ends it with `JIT_INTERRUPTED` and nothing stored.
 */
export async function login(deps: LoginDeps, input: LoginInput): Promise<LoginResult> {
  const { request, reporter } = input
  await deps.store.probe()
  throwIfAborted(input.signal)

  const oidc = await deps.oidc()
  const session = await oidc.discover({
    issuer: request.issuer,
    clientId: request.clientId,
    allowInsecureLoopback: input.allowInsecureLoopback,
    ...(input.clientSecret ? { clientSecret: input.clientSecret } : {}),
    ...(input.signal ? { signal: input.signal } : {}),
  })
  throwIfAborted(input.signal)
  reporter.started({ flow: 'device', issuer: session.info.issuer })

  const authParams = new URLSearchParams({ scope: request.scopes.join(' ') })
  for (const r of request.resources) authParams.append('resource', r)
  if (request.audience) authParams.set('audience', request.audience)

  const device = await session.startDeviceAuthorization(authParams)
  checkVerificationUri(device)
  const startedAt = deps.clock.now()
  const expiresAt = startedAt + device.expiresIn * 1000

  const tokenParams = new URLSearchParams()
  for (const r of request.resources) tokenParams.append('resource', r)
  if (input.ttlParam) tokenParams.set(input.ttlParam, String(Math.floor(request.ttlMs / 1000)))

  let tokens: TokenResponse
  try {
    reporter.deviceAuthorization({
      userCode: device.userCode,
      verificationUri: device.verificationUri,
      ...(device.verificationUriComplete ? { verificationUriComplete: device.verificationUriComplete } : {}),
      expiresIn: device.expiresIn,
      expiresAt,
    })
    if (input.openBrowser) await openQuietly(deps, reporter, device.verificationUriComplete ?? device.verificationUri)
    tokens = await pollForTokens(deps, session.pollDeviceToken.bind(session), device, tokenParams, expiresAt, input.signal)
  } finally {
    reporter.stopped()
  }

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
  const notGranted = missingScopes(request.scopes, scopes)
  if (notGranted.length > 0) reporter.warn(`the provider did not grant: ${notGranted.join(' ')}`)

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
    store: deps.store.kind,
    fingerprint: tokenFingerprint(tokens.accessToken),
    ...(typeof sub === 'string' ? { subject: sub } : {}),
    flow: 'device',
  }
  const credential: Credential = {
    meta,
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    ...(tokens.idToken ? { idToken: tokens.idToken } : {}),
    ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
  }
  // A Ctrl-C that arrives while the tokens were on their way still means "stop": nothing is stored.
  throwIfAborted(input.signal)
  const stored = deps.store.kind !== 'none'
  if (stored) await saveCredential(deps, credential)
  return { credential, notGranted, stored }
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
