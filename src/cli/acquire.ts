import { readFileSync } from 'node:fs'
import type { Credential } from '../core/credential-cache.js'
import { obtainToken, type Locks } from '../core/obtain-token.js'
import type { ClientAuthSpec } from '../core/ports.js'
import { ErrorCode, JitError } from '../errors.js'
import { acquireLock, lockDir } from '../store/lock.js'
import type { Ctx } from './context.js'
import type { LoginFlags } from './commands/login.js'
import type { Resolved } from './resolve.js'
import { openStores, type Stores } from './stores.js'

/** Flags that say where a CI token comes from, on `jit token` and `jit exec`. */
export interface SubjectFlags {
  subjectTokenFile?: string
  subjectTokenEnv?: string
}

/** Options of {@link acquireCredential}. */
export interface AcquireOptions {
  minTtlMs: number
  /** A person may log in here (`jit exec` on a terminal, `jit token --login`). */
  allowLogin: boolean
  loginFlags: LoginFlags
  subject: SubjectFlags
}

/** True when nobody can answer a prompt: CI, `--no-input`, or neither stdin nor stderr is a terminal. */
export function nonInteractive(ctx: Ctx, noInput: boolean): boolean {
  const { env, io } = ctx.deps
  return env.CI === 'true' || noInput || (!io.isInTTY && !io.isErrTTY)
}

const MACHINE_FLOWS = new Set(['client-credentials', 'token-exchange'])

/**
 * The store for this invocation. Machine flows on a box without a keychain (a CI runner) use `none` when no store was
 * chosen, and say so with `--debug`; every other case keeps the chosen store, whose probe reports what is missing.
 */
export function storesFor(ctx: Ctx, resolved: Resolved): Stores {
  const { deps } = ctx
  let kind = resolved.request.store
  const machine = MACHINE_FLOWS.has(resolved.request.flow)
  if (machine && !resolved.storeExplicit && kind === 'keychain' && deps.platform === 'linux' && !deps.env.DBUS_SESSION_BUS_ADDRESS) {
    kind = 'none'
    if (ctx.debug) deps.io.err.write('jit: no keychain here (no D-Bus session): nothing is kept (--store none); use --store file to keep it\n')
  } else if (ctx.debug) {
    deps.io.err.write(`jit: store ${kind}\n`)
  }
  return openStores(deps, resolved.dir, kind, ctx.warn, { interactive: false })
}

/** Cross-process locks in the per-user lock folder. */
export function fileLocks(ctx: Ctx): Locks {
  const { deps } = ctx
  return {
    acquire: async (key) => acquireLock(lockDir(deps.env), key, { timeoutMs: 120_000, sleep: (ms) => deps.sleep(ms), now: () => deps.clock.now() }),
  }
}

/**
 * A usable credential for `resolved`: from the cache; else from a machine flow; else from a login when a person is
 * here and it is allowed. Parallel callers fetch once (per-key lock).
 */
export async function acquireCredential(ctx: Ctx, resolved: Resolved, opts: AcquireOptions): Promise<Credential> {
  const { deps } = ctx
  const stores = storesFor(ctx, resolved)
  const { request, profile } = resolved
  let fetch: (() => Promise<Credential>) | undefined
  if (MACHINE_FLOWS.has(request.flow)) {
    fetch = async () => {
      if (request.ttlMs <= request.leewayMs + opts.minTtlMs) {
        // Every fetch would come back too short: say so instead of asking the provider again and again.
        throw new JitError(ErrorCode.USAGE, `--min-ttl cannot be met: a new token lives at most the TTL (${Math.round(request.ttlMs / 1000)}s) minus the ${Math.round(request.leewayMs / 1000)}s safety margin`, {
          hint: 'ask for a longer --ttl or a shorter --min-ttl',
        })
      }
      // Loaded only when a token is fetched: a cache hit stays small.
      const [{ machineLogin }, { subjectTokenSource }] = await Promise.all([import('../core/machine-login.js'), import('../platform/ci-identity.js')])
      const spec = opts.subject.subjectTokenFile
        ? `file:${opts.subject.subjectTokenFile}`
        : opts.subject.subjectTokenEnv
          ? `env:${opts.subject.subjectTokenEnv}`
          : profile.subjectToken
      const subjectToken =
        request.flow === 'token-exchange'
          ? subjectTokenSource({ spec, env: deps.env, audience: profile.subjectAudience ?? request.issuer, fetch: globalThis.fetch })
          : undefined
      const { credentialEvent, requestEvent } = await import('./audit-events.js')
      const result = await machineLogin(
        { ...stores, clock: deps.clock, oidc: deps.oidc },
        {
          request,
          flow: request.flow as 'client-credentials' | 'token-exchange',
          clientAuth: clientAuthFor(ctx, resolved),
          ...(profile.exchange ? { exchange: profile.exchange } : {}),
          ...(profile.subjectTokenType ? { subjectTokenType: profile.subjectTokenType } : {}),
          ...(subjectToken ? { subjectToken } : {}),
          ...(profile.ttlParam ? { ttlParam: profile.ttlParam } : {}),
          allowInsecureLoopback: profile.insecureLoopback === true,
        },
      ).catch((err: unknown) => {
        requestEvent(ctx, 'login_failed', request, err, { flow: request.flow })
        throw err
      })
      credentialEvent(ctx, 'issued', result.credential.meta)
      return result.credential
    }
  } else if (opts.allowLogin) {
    fetch = async () => {
      const { performLogin } = await import('./commands/login.js')
      return (await performLogin(ctx, opts.loginFlags)).credential
    }
  }
  const refresh = async (c: Credential): Promise<Credential> => {
    const { refreshCredential } = await import('../core/refresh.js')
    const { credentialEvent } = await import('./audit-events.js')
    const fresh = await refreshCredential(
      { ...stores, clock: deps.clock, oidc: deps.oidc },
      { credential: c, ...(profile.ttlParam ? { ttlParam: profile.ttlParam } : {}), allowInsecureLoopback: profile.insecureLoopback === true },
    )
    credentialEvent(ctx, 'issued', fresh.meta, { flow: 'refresh' })
    return fresh
  }
  const { credential, expired } = await obtainToken(
    { ...stores, clock: deps.clock, locks: fileLocks(ctx) },
    { request, minTtlMs: opts.minTtlMs, loginCommand: resolved.loginCommand },
    fetch,
    refresh,
  )
  if (expired.length) (await import('./audit-events.js')).expiredEvents(ctx, expired)
  return credential
}

/** Client authentication from the profile: a private key file, a secret from the named variable, or none. */
export function clientAuthFor(ctx: Ctx, resolved: Pick<Resolved, 'profile' | 'profileName'>, opts: { requireSecret?: boolean } = {}): ClientAuthSpec {
  const { profile, profileName } = resolved
  if (profile.privateKeyFile) {
    let pem: string
    try {
      pem = readFileSync(profile.privateKeyFile, 'utf8')
    } catch (err) {
      throw new JitError(ErrorCode.CONFIG, `cannot read the private key file "${profile.privateKeyFile}" of profile "${profileName}"`, { cause: err })
    }
    return { method: 'private_key_jwt', privateKeyPem: pem, ...(profile.privateKeyKid ? { kid: profile.privateKeyKid } : {}) }
  }
  if (profile.clientSecretEnv) {
    const secret = ctx.deps.env[profile.clientSecretEnv]
    if (!secret && opts.requireSecret === false) return { method: 'none' }
    if (!secret) {
      throw new JitError(ErrorCode.INTERACTION_REQUIRED, `the variable ${profile.clientSecretEnv} with the client secret of profile "${profileName}" is not set`, {
        hint: `export ${profile.clientSecretEnv}=... (from your CI system's secret store)`,
      })
    }
    return { method: profile.clientAuth === 'basic' ? 'client_secret_basic' : 'client_secret_post', secret }
  }
  return { method: 'none' }
}
