import type { CacheDeps } from './credential-cache.js'
import type { CredentialMeta } from './ports.js'

/** Input of {@link logout}: one profile, or every credential with `all`. */
export type LogoutInput = { profile: string; all?: false } | { all: true }

/** Result of {@link logout}. */
export interface LogoutResult {
  removed: CredentialMeta[]
  /** Keychain entries under service `jit` that had no state entry (a lost state file) and were removed too. */
  orphans: number
}

/**
 * Deletes cached credentials locally: state entry and secret. Revocation at the provider (RFC 7009) is not done yet.
 * Keychain entries of the same profile (or all, with `all`) that the state file does not know, left by a lost state
 * file, are removed as well when the keychain can list them.
 */
export async function logout(
  deps: CacheDeps & { listKeychainKeys?: () => Promise<string[]> },
  input: LogoutInput,
): Promise<LogoutResult> {
  const targets = deps.state.list().filter((m) => input.all === true || m.profile === input.profile)
  const removed: CredentialMeta[] = []
  for (const meta of targets) {
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
  return { removed, orphans }
}
