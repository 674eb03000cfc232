import { ErrorCode, JitError } from '../errors.js'
import type { Credential } from './credential-cache.js'
import { readJwtPayload } from './jwt.js'

/** Variables `jit exec` always sets (DESIGN.md §6.7: it owns them, so a parent's copies are replaced). */
export const MANAGED_VARIABLES = ['JIT_ACCESS_TOKEN', 'JIT_TOKEN_EXPIRES_AT', 'JIT_PROFILE'] as const

/** One `NAME=FIELD` mapping of `--env` or the profile's `exec-env`. */
export interface EnvMapping {
  name: string
  field: string
}

const FIELDS = ['access_token', 'id_token', 'token_type', 'authorization', 'expires_at', 'expires_in', 'profile', 'scope', 'subject']

/**
 * Parses `NAME=FIELD` (`PGPASSWORD=access_token`, `PGUSER=claim:preferred_username`).
 *
 * @throws JitError `JIT_USAGE` for a bad name or an unknown field.
 */
export function parseEnvMapping(text: string): EnvMapping {
  const eq = text.indexOf('=')
  const name = eq > 0 ? text.slice(0, eq) : ''
  const field = eq > 0 ? text.slice(eq + 1) : ''
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new JitError(ErrorCode.USAGE, `invalid --env "${text}": use NAME=FIELD, e.g. PGPASSWORD=access_token`)
  }
  if (!FIELDS.includes(field) && !/^claim:[A-Za-z0-9_.:-]+$/.test(field)) {
    throw new JitError(ErrorCode.USAGE, `invalid --env "${text}": unknown field "${field}"`, {
      hint: `fields: ${FIELDS.join(', ')}, claim:<name>`,
    })
  }
  return { name, field }
}

/**
 * The child's environment: the parent's, with jit's variables and the mappings set (replacing any the parent had).
 * Claims come from the ID token first, then from a JWT access token; both were verified when obtained.
 *
 * @throws JitError `JIT_USAGE` when a mapped claim is not in the credential.
 */
export function buildChildEnv(
  parent: Readonly<Record<string, string | undefined>>,
  credential: Credential,
  mappings: readonly EnvMapping[],
  now: number,
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(parent)) if (v !== undefined) env[k] = v
  const { meta } = credential
  env.JIT_ACCESS_TOKEN = credential.accessToken
  env.JIT_TOKEN_EXPIRES_AT = new Date(meta.deadline).toISOString()
  env.JIT_PROFILE = meta.profile
  const claims = { ...(readJwtPayload(credential.accessToken) ?? {}), ...(credential.idToken ? (readJwtPayload(credential.idToken) ?? {}) : {}) }
  for (const { name, field } of mappings) {
    env[name] = fieldValue(field, credential, claims, now)
  }
  return env
}

function fieldValue(field: string, c: Credential, claims: Record<string, unknown>, now: number): string {
  switch (field) {
    case 'access_token':
      return c.accessToken
    case 'id_token':
      if (!c.idToken) throw new JitError(ErrorCode.USAGE, 'the credential has no ID token to put in the environment')
      return c.idToken
    case 'token_type':
      return c.tokenType
    case 'authorization':
      return `Bearer ${c.accessToken}`
    case 'expires_at':
      return new Date(c.meta.deadline).toISOString()
    case 'expires_in':
      return String(Math.max(0, Math.floor((c.meta.deadline - now) / 1000)))
    case 'profile':
      return c.meta.profile
    case 'scope':
      return c.meta.scopes.join(' ')
    case 'subject':
      return c.meta.subject ?? ''
  }
  const claim = field.slice('claim:'.length)
  const value = claims[claim]
  if (value === undefined || value === null || typeof value === 'object') {
    throw new JitError(ErrorCode.USAGE, `the credential has no claim "${claim}" to put in the environment`, {
      hint: 'check the claim name in --env or the profile\'s exec-env',
    })
  }
  return String(value)
}
