import { resolve as resolvePath } from 'node:path'
import { ErrorCode, JitError } from '../errors.js'
import { parseDuration } from '../core/duration.js'

/** The login flows a profile can name. */
export const FLOWS = ['device', 'pkce', 'auto', 'client-credentials', 'token-exchange'] as const
export type Flow = (typeof FLOWS)[number]

/** Where secrets go. */
export const STORES = ['keychain', 'file', 'none'] as const
export type StoreKind = (typeof STORES)[number]

/** A profile as saved in the config file. It never holds a secret: `clientSecretEnv` names a variable. */
export interface Profile {
  issuer: string
  clientId: string
  clientSecretEnv?: string
  flow?: Flow
  /** Default scopes, space-separated. */
  scope?: string
  resource?: string[]
  audience?: string
  ttl?: string
  maxTtl?: string
  redirectPort?: number
  /** Host name in the loopback redirect URI; the listener binds 127.0.0.1 either way. */
  redirectHost?: '127.0.0.1' | 'localhost'
  insecureLoopback?: boolean
  /** Token-endpoint parameter that carries the requested TTL in seconds, for providers that honour one. */
  ttlParam?: string
  store?: StoreKind
  leeway?: string
  execEnv?: string[]
  /** `post` (default) or `basic`: how a client secret is sent. */
  clientAuth?: 'post' | 'basic'
  /** PKCS#8 PEM file of the client's key for private_key_jwt (RFC 7523). */
  privateKeyFile?: string
  privateKeyKid?: string
  /** token-exchange: `github`, `env:NAME` or `file:PATH`. */
  subjectToken?: string
  /** token-exchange: the `aud` to ask the CI system for. */
  subjectAudience?: string
  /** token-exchange: RFC 8693 exchange (default) or RFC 7523 client assertion (Entra ID workload identity federation). */
  exchange?: 'token-exchange' | 'client-assertion'
  /** token-exchange: `id_token` (default), `jwt` or `access_token` (RFC 8693 §3). */
  subjectTokenType?: 'id_token' | 'jwt' | 'access_token'
  /** Scopes a request may name; anything else is refused before any network call. */
  allowedScopes?: string[]
  acrValues?: string
  requireAcr?: string[]
  requireAmr?: string[]
  maxAuthAge?: string
  allowBroaderGrant?: boolean
  allowRefresh?: boolean
}

type Field = {
  key: keyof Profile
  description: string
  parse: (value: string[]) => Profile[keyof Profile]
}

const one = (name: string, values: string[]): string => {
  if (values.length !== 1 || values[0] === undefined || values[0] === '') {
    throw new JitError(ErrorCode.USAGE, `${name} takes exactly one value`)
  }
  return values[0]
}

const choice =
  <T extends string>(name: string, allowed: readonly T[]) =>
  (values: string[]): T => {
    const v = one(name, values)
    if (!(allowed as readonly string[]).includes(v)) {
      throw new JitError(ErrorCode.USAGE, `invalid ${name} "${v}": use one of ${allowed.join(', ')}`)
    }
    return v as T
  }

/** Values given as several arguments, space-separated words, or both. */
const words = (values: string[]): string[] => values.flatMap((x) => x.split(/\s+/)).filter(Boolean)

const duration = (name: string) => (values: string[]) => {
  const v = one(name, values)
  parseDuration(v, name)
  return v
}

const bool = (name: string) => (values: string[]) => {
  const v = one(name, values).toLowerCase()
  if (['true', 'yes', '1', 'on'].includes(v)) return true
  if (['false', 'no', '0', 'off'].includes(v)) return false
  throw new JitError(ErrorCode.USAGE, `invalid ${name} "${v}": use true or false`)
}

/** The settable profile fields, by their CLI name (`jit config set NAME <field> <value...>`). */
export const PROFILE_FIELDS: Record<string, Field> = {
  issuer: { key: 'issuer', description: 'issuer URL (checked by discovery at init)', parse: (v) => one('issuer', v) },
  'client-id': { key: 'clientId', description: 'OAuth client ID', parse: (v) => one('client-id', v) },
  'client-secret-env': {
    key: 'clientSecretEnv',
    description: 'name of the environment variable that holds the client secret (never the secret)',
    parse: (v) => {
      const name = one('client-secret-env', v)
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new JitError(ErrorCode.USAGE, `invalid client-secret-env "${name}": give the NAME of a variable, not a secret`)
      }
      return name
    },
  },
  flow: { key: 'flow', description: `login flow: ${FLOWS.join(', ')}`, parse: choice('flow', FLOWS) },
  scope: { key: 'scope', description: 'default scopes (space-separated)', parse: (v) => v.join(' ').trim() },
  resource: { key: 'resource', description: 'default resource indicators (RFC 8707)', parse: words },
  audience: { key: 'audience', description: 'default audience', parse: (v) => one('audience', v) },
  ttl: { key: 'ttl', description: 'default TTL (e.g. 1h)', parse: duration('ttl') },
  'max-ttl': { key: 'maxTtl', description: 'largest TTL a login may ask for', parse: duration('max-ttl') },
  'redirect-port': {
    key: 'redirectPort',
    description: 'fixed loopback port for the browser flow',
    parse: (v) => {
      const n = Number(one('redirect-port', v))
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new JitError(ErrorCode.USAGE, `invalid redirect-port "${v[0]}"`)
      return n
    },
  },
  'redirect-host': { key: 'redirectHost', description: 'host name in the redirect URI: 127.0.0.1 or localhost', parse: choice('redirect-host', ['127.0.0.1', 'localhost'] as const) },
  'insecure-loopback': { key: 'insecureLoopback', description: 'allow plain http to a loopback issuer', parse: bool('insecure-loopback') },
  'ttl-param': { key: 'ttlParam', description: 'token-request parameter that carries the TTL in seconds', parse: (v) => one('ttl-param', v) },
  store: { key: 'store', description: `where secrets go: ${STORES.join(', ')}`, parse: choice('store', STORES) },
  leeway: { key: 'leeway', description: 'safety margin before a deadline (default 30s)', parse: duration('leeway') },
  'client-auth': { key: 'clientAuth', description: 'how a client secret is sent: post or basic', parse: choice('client-auth', ['post', 'basic'] as const) },
  'private-key-file': { key: 'privateKeyFile', description: 'PEM private key for private_key_jwt client authentication', parse: (v) => resolvePath(one('private-key-file', v)) },
  'private-key-kid': { key: 'privateKeyKid', description: 'key ID (kid) of the private key, if the provider needs it', parse: (v) => one('private-key-kid', v) },
  'subject-token': {
    key: 'subjectToken',
    description: 'token-exchange: where the CI OIDC token comes from: github, env:NAME or file:PATH',
    parse: (v) => {
      const spec = one('subject-token', v)
      if (spec !== 'github' && !/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(spec) && !/^file:.+/.test(spec)) {
        throw new JitError(ErrorCode.USAGE, `invalid subject-token "${spec}": use github, env:NAME or file:PATH`)
      }
      return spec
    },
  },
  'subject-audience': { key: 'subjectAudience', description: 'token-exchange: audience to ask the CI system for', parse: (v) => one('subject-audience', v) },
  'subject-token-type': { key: 'subjectTokenType', description: 'token-exchange: id_token (default), jwt or access_token', parse: choice('subject-token-type', ['id_token', 'jwt', 'access_token'] as const) },
  exchange: { key: 'exchange', description: 'token-exchange method: token-exchange (RFC 8693) or client-assertion (RFC 7523)', parse: choice('exchange', ['token-exchange', 'client-assertion'] as const) },
  'allowed-scopes': { key: 'allowedScopes', description: 'the only scopes a request may name (checked before any network call)', parse: words },
  'acr-values': { key: 'acrValues', description: 'acr_values to ask the provider for (space-separated)', parse: (v) => v.join(' ').trim() },
  'require-acr': { key: 'requireAcr', description: 'acceptable acr values of the ID token (any of them)', parse: words },
  'require-amr': { key: 'requireAmr', description: 'amr values the ID token must all carry, e.g. otp or mfa', parse: words },
  'max-auth-age': { key: 'maxAuthAge', description: 'the sign-in must be at most this old (max_age, checked against auth_time)', parse: duration('max-auth-age') },
  'allow-broader-grant': { key: 'allowBroaderGrant', description: 'accept a grant broader than the request (default: refuse)', parse: bool('allow-broader-grant') },
  'allow-refresh': { key: 'allowRefresh', description: 'ask for offline_access and keep the refresh token (never used past the TTL)', parse: bool('allow-refresh') },
  'exec-env': { key: 'execEnv', description: 'variables jit exec sets, e.g. PGPASSWORD=access_token', parse: words },
}

/** Profile names end up in keychain account names and file names: keep them plain. */
export function checkProfileName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new JitError(ErrorCode.USAGE, `invalid profile name "${name}": use letters, digits, ".", "_" or "-"`)
  }
  return name
}

/** Turns a saved object into a {@link Profile}, or explains what is wrong with it. */
export function validateProfile(name: string, value: unknown): Profile {
  if (value === null || typeof value !== 'object') throw new JitError(ErrorCode.CONFIG, `profile "${name}" is not an object`)
  const p = value as Record<string, unknown>
  if (typeof p.issuer !== 'string' || typeof p.clientId !== 'string') {
    throw new JitError(ErrorCode.CONFIG, `profile "${name}" lacks an issuer or client-id`, { hint: `run: jit config show ${name}` })
  }
  return p as unknown as Profile
}

/** Renders a profile with CLI field names, for `config show` and `--json`. */
export function profileToFields(profile: Profile): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, field] of Object.entries(PROFILE_FIELDS)) {
    const v = profile[field.key]
    if (v !== undefined) out[name] = v
  }
  return out
}
