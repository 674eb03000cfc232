import { peekCredential, type CacheDeps, type Credential } from './credential-cache.js'
import type { CredentialMeta } from './ports.js'

/** What the provider did with one credential's tokens (RFC 7009). */
export interface RevocationReport {
  profile: string
  /** Fingerprint of the access token concerned. */
  fingerprint?: string
  /** `revoked`, `unsupported` (no revocation endpoint), `failed` (with a reason), or `skipped`. */
  access: 'revoked' | 'unsupported' | 'failed' | 'skipped'
  refresh?: 'revoked' | 'unsupported' | 'failed'
  /** What stays valid anyway, e.g. a JWT access token until its exp. */
  note?: string
  reason?: string
}

/** Input of {@link logout}: one profile, or every credential with `all`. */
export type LogoutInput = { profile: string; all?: false } | { all: true }

/** Result of {@link logout}. */
export interface LogoutResult {
  removed: CredentialMeta[]
  revocations: RevocationReport[]
  /** Keychain entries under service `jit` that had no state entry (a lost state file) and were removed too. */
  orphans: number
}

/**
 * Revokes cached credentials at the provider where it offers revocation (RFC 7009), then deletes them locally (state
 * entry and secret). Local deletion happens even when the provider cannot be reached; the report says so.
 * Keychain entries of the same profile (or all, with `all`) that the state file does not know, left by a lost state
 * file, are removed as well when the keychain can list them.
 */
export async function logout(
  deps: CacheDeps & { listKeychainKeys?: () => Promise<string[]>; revoke?: (credential: Credential) => Promise<RevocationReport> },
  input: LogoutInput,
): Promise<LogoutResult> {
  const targets = deps.state.list().filter((m) => input.all === true || m.profile === input.profile)
  const removed: CredentialMeta[] = []
  const revocations: RevocationReport[] = []
  for (const meta of targets) {
    if (deps.revoke) {
      const credential = await peekCredential(deps, meta).catch(() => undefined)
      if (!credential) {
        revocations.push({
          profile: meta.profile,
          fingerprint: meta.fingerprint,
          access: 'failed',
          reason: 'the secret could not be read (a locked keychain, or the file store without JIT_STORE_KEY), so nothing was revoked',
        })
      } else {
        const report: RevocationReport = await deps.revoke(credential).catch((err: unknown) => ({
          profile: meta.profile,
          access: 'failed' as const,
          reason: err instanceof Error ? err.message : String(err),
        }))
        revocations.push({ ...report, fingerprint: meta.fingerprint })
      }
    }
    await deps.storeFor(meta.store).delete(meta.key)
    deps.state.remove([meta.key])
    removed.push(meta)
  }
  let orphans = 0
  if (deps.listKeychainKeys) {
    const known = new Set(removed.map((m) => m.key))
    const keychain = deps.storeFor('keychain')
    for (const key of await deps.listKeychainKeys()) {
      if (known.has(key) || (input.all !== true && !key.startsWith(`${input.profile}/`))) continue
      if (await keychain.delete(key)) orphans += 1
    }
  }
  return { removed, revocations, orphans }
}
