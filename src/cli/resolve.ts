import { readFileSync } from 'node:fs'
import { chooseProfile, configDir, readConfig, type ConfigDoc } from '../config/config-file.js'
import { STORES, type Profile, type StoreKind } from '../config/profile.js'
import { parseDuration } from '../core/duration.js'
import type { CredentialRequest } from '../core/request.js'
import { normalizeScopes } from '../core/scopes.js'
import { DEFAULT_LEEWAY_MS } from '../core/token-policy.js'
import type { Deps } from '../deps.js'
import { ErrorCode, JitError } from '../errors.js'

/** The default TTL when neither flag, env nor profile names one: short by design. */
export const DEFAULT_TTL = '1h'

/** Flags shared by the commands that name a credential. */
export interface RequestFlags {
  profile?: string
  scope?: string[]
  resource?: string[]
  audience?: string
  ttl?: string
  store?: string
  authorizationDetails?: string
  acrValues?: string
  maxAge?: string
}

/** A request resolved from flags > `JIT_*` env > profile > defaults (DESIGN.md §2). */
export interface Resolved {
  request: CredentialRequest
  profileName: string
  profile: Profile
  dir: string
  /** The command that gets a matching credential, for hints. */
  loginCommand: string
  /** Whether the store was chosen (flag, env or profile) rather than defaulted. */
  storeExplicit: boolean
}

/** Loads the config once per invocation. */
export function loadConfig(deps: Pick<Deps, 'env'>, warn: (m: string) => void): { dir: string; doc: ConfigDoc } {
  const dir = configDir(deps.env)
  return { dir, doc: readConfig(dir, warn) }
}

/**
 * Merges flags, environment and profile into a {@link CredentialRequest}.
 *
 * @throws JitError `JIT_PROFILE_NOT_FOUND`, `JIT_INVALID_TTL`, `JIT_TTL_ABOVE_MAX`, `JIT_USAGE` (all exit 2).
 */
export function resolveRequest(
  deps: Pick<Deps, 'env'>,
  flags: RequestFlags,
  config: { dir: string; doc: ConfigDoc },
  purpose: 'login' | 'lookup' = 'login',
): Resolved {
  const env = purpose === 'lookup' ? { ...deps.env, JIT_TTL: undefined } : deps.env
  const { name, profile } = chooseProfile(config.doc, flags.profile, env)

  const scopeSource = flags.scope?.length ? flags.scope : env.JIT_SCOPE ? [env.JIT_SCOPE] : [profile.scope]
  const scopes = normalizeScopes(['openid', ...scopeSource, ...(profile.allowRefresh ? ['offline_access'] : [])])
  if (profile.allowedScopes) {
    const allowed = new Set([...profile.allowedScopes, 'openid', ...(profile.allowRefresh ? ['offline_access'] : [])])
    const outside = scopes.filter((s) => !allowed.has(s))
    if (outside.length) {
      // Least privilege, enforced locally and before any request: the provider never sees the ask.
      throw new JitError(ErrorCode.USAGE, `profile "${name}" does not allow the scope${outside.length > 1 ? 's' : ''} ${outside.join(' ')}`, {
        hint: `allowed: ${profile.allowedScopes.join(' ')}`,
      })
    }
  }
  const authorizationDetails = flags.authorizationDetails !== undefined ? readAuthorizationDetails(flags.authorizationDetails) : undefined
  const maxAgeText = flags.maxAge ?? profile.maxAuthAge
  const maxAuthAgeSec = maxAgeText !== undefined ? Math.floor(parseDuration(maxAgeText, flags.maxAge ? '--max-age' : 'max-auth-age') / 1000) : undefined
  const acrValues = flags.acrValues ?? profile.acrValues

  const ttlText = flags.ttl ?? env.JIT_TTL ?? profile.ttl ?? DEFAULT_TTL
  const ttlFrom = flags.ttl !== undefined ? '--ttl' : env.JIT_TTL !== undefined ? 'JIT_TTL' : profile.ttl !== undefined ? 'profile ttl' : 'ttl'
  const ttlMs = parseDuration(ttlText, ttlFrom)
  const maxTtlMs = profile.maxTtl ? parseDuration(profile.maxTtl, 'max-ttl') : undefined
  // A lookup (jit token) never asks for a TTL, so only a login can be over the cap.
  if (purpose === 'login' && maxTtlMs !== undefined && ttlMs > maxTtlMs) {
    throw new JitError(ErrorCode.TTL_ABOVE_MAX, `${ttlFrom} ${ttlText} is above the max-ttl ${profile.maxTtl} of profile "${name}"`, {
      hint: `ask for ${profile.maxTtl} or less`,
    })
  }
  const leewayMs = profile.leeway ? parseDuration(profile.leeway, 'leeway') : DEFAULT_LEEWAY_MS

  const storeText = flags.store ?? env.JIT_STORE ?? profile.store ?? 'keychain'
  if (!(STORES as readonly string[]).includes(storeText)) {
    throw new JitError(ErrorCode.USAGE, `invalid store "${storeText}": use one of ${STORES.join(', ')}`)
  }

  // Order kept (the first is the one the access token is for, RFC 8707 §2.2); the cache key sorts them.
  const resources = [...new Set((flags.resource?.length ? flags.resource : (profile.resource ?? [])).flatMap((r) => r.split(/\s+/)).filter(Boolean))]
  const audience = flags.audience ?? profile.audience
  const request: CredentialRequest = {
    profile: name,
    issuer: profile.issuer,
    clientId: profile.clientId,
    scopes,
    resources,
    ...(audience ? { audience } : {}),
    ttlMs,
    ...(maxTtlMs !== undefined ? { maxTtlMs } : {}),
    leewayMs,
    store: storeText as StoreKind,
    flow: profile.flow ?? 'auto',
    ...(authorizationDetails ? { authorizationDetails } : {}),
    ...(acrValues ? { acrValues } : {}),
    ...(profile.requireAcr?.length ? { requireAcr: profile.requireAcr } : {}),
    ...(profile.requireAmr?.length ? { requireAmr: profile.requireAmr } : {}),
    ...(maxAuthAgeSec !== undefined ? { maxAuthAgeSec } : {}),
    ...(profile.allowBroaderGrant ? { allowBroaderGrant: true } : {}),
    ...(profile.allowRefresh ? { allowRefresh: true } : {}),
  }

  const parts = ['jit login', `--profile ${name}`]
  if (flags.scope?.length) parts.push(`--scope ${quote(scopes.filter((s) => s !== 'openid').join(' '))}`)
  for (const r of flags.resource ?? []) parts.push(`--resource ${quote(r)}`)
  if (flags.audience) parts.push(`--audience ${quote(flags.audience)}`)
  if (flags.ttl) parts.push(`--ttl ${flags.ttl}`)
  const storeExplicit = flags.store !== undefined || env.JIT_STORE !== undefined || profile.store !== undefined
  return { request, profileName: name, profile, dir: config.dir, loginCommand: parts.join(' '), storeExplicit }
}

/** `--authorization-details JSON|@file` (RFC 9396): a JSON array of objects with a `type`, normalized. */
function readAuthorizationDetails(value: string): string {
  let text = value
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8')
    } catch (err) {
      throw new JitError(ErrorCode.USAGE, `cannot read --authorization-details file "${value.slice(1)}"`, { cause: err })
    }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new JitError(ErrorCode.USAGE, '--authorization-details is not valid JSON')
  }
  if (!Array.isArray(parsed) || parsed.some((d) => d === null || typeof d !== 'object' || typeof (d as { type?: unknown }).type !== 'string')) {
    throw new JitError(ErrorCode.USAGE, '--authorization-details must be a JSON array of objects with a "type" (RFC 9396)')
  }
  return JSON.stringify(parsed)
}

/** Quotes a value for a POSIX shell; plain words stay as they are unless `always`. */
export function shellQuote(value: string, always = false): string {
  return !always && /^[A-Za-z0-9_:./@=-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}

const quote = (value: string): string => shellQuote(value)

/** Collects a repeatable option (`--scope a --scope b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value]
}
