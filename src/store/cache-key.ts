import { createHash } from 'node:crypto'

/** What identifies a credential: the same request gets the same keychain entry. */
export interface CacheKeyInput {
  profile: string
  issuer: string
  clientId: string
  scopes: readonly string[]
  resources: readonly string[]
  audience?: string | undefined
  /** acr_values and authorization_details: a credential got under other conditions is another credential. */
  acr?: string | undefined
}

/**
 * The keychain account of a credential: `<profile>/<sha256 of issuer, client, sorted scopes, resources, audience,
 * acr>` (DESIGN.md §4). Order of scopes and resources does not matter.
 */
export function cacheKey(input: CacheKeyInput): string {
  const material = JSON.stringify([
    input.issuer,
    input.clientId,
    [...new Set(input.scopes)].sort(),
    [...new Set(input.resources)].sort(),
    input.audience ?? null,
    input.acr ?? null,
  ])
  return `${input.profile}/${createHash('sha256').update(material).digest('hex')}`
}

/** A short, non-reversible fingerprint of a token for logs and state (never the token itself). */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12)
}
