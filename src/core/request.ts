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
  /** RFC 9396 `authorization_details` (JSON text), sent on every flow and part of the cache key. */
  authorizationDetails?: string
  /** `acr_values` to ask for (OIDC Core §3.1.2.1). */
  acrValues?: string
  /** Acceptable `acr` values of the ID token; empty/absent: no requirement. */
  requireAcr?: string[]
  /** `amr` values the ID token must all carry (e.g. `otp`, `mfa`). */
  requireAmr?: string[]
  /** Maximum age of the sign-in (`max_age`, checked against `auth_time`), seconds. */
  maxAuthAgeSec?: number
  /** Accept a grant broader than the request (default: refuse it). */
  allowBroaderGrant?: boolean
  /** Keep a refresh token (the request then includes `offline_access`); refreshes never pass the login's TTL. */
  allowRefresh?: boolean
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
    acr: request.acrValues || request.authorizationDetails ? JSON.stringify([request.acrValues ?? null, request.authorizationDetails ?? null]) : undefined,
  })
}
