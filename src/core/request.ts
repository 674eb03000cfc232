import type { Flow, StoreKind } from '../config/profile.js'
import { cacheKey } from '../store/cache-key.js'

/** A fully resolved credential request: flags, env and profile already merged by the CLI. */
export interface CredentialRequest {
  profile: string
  issuer: string
  clientId: string
  /** Normalized; includes `openid`. */
  scopes: string[]
  resources: string[]
  audience?: string
  /** The TTL asked for (ms). */
  ttlMs: number
  /** The profile's cap (ms). */
  maxTtlMs?: number
  leewayMs: number
  store: StoreKind
  flow: Flow
}

/** The keychain account for a request. */
export function requestKey(request: CredentialRequest): string {
  return cacheKey({
    profile: request.profile,
    issuer: request.issuer,
    clientId: request.clientId,
    scopes: request.scopes,
    resources: request.resources,
    audience: request.audience,
  })
}
