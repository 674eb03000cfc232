import type { SecretStore } from '../store/secret-store.js'
import type { CredentialMeta, StateStore } from './ports.js'
import { isExpired } from './token-policy.js'

/** A credential with its secrets, as handed to a use case. Never logged, never printed except by `jit token`. */
export interface Credential {
  meta: CredentialMeta
  accessToken: string
  tokenType: string
  idToken?: string
  refreshToken?: string
}

/** The versioned JSON document stored in the keychain. */
interface StoredDoc {
  v: 1
  accessToken: string
  tokenType: string
  idToken?: string
  refreshToken?: string
  meta: CredentialMeta
}

/** What {@link readCredential} found. */
export type CacheRead =
  | { kind: 'hit'; credential: Credential }
  | { kind: 'miss' }
  | { kind: 'expired'; meta: CredentialMeta }
  /** The access token is past its deadline, but the refresh token may still be used until the login's deadline. */
  | { kind: 'stale'; credential: Credential }

/** When a cached entry must go: its deadline, or with a refresh token, the login's deadline (never later). */
export function endOf(meta: CredentialMeta): number {
  return meta.refreshable === true && meta.loginDeadline !== undefined ? Math.max(meta.deadline, meta.loginDeadline) : meta.deadline
}

/** Dependencies of the credential cache. */
export interface CacheDeps {
  /** The store a credential lives in (each state entry names its own, so reads follow where it was written). */
  storeFor: (kind: CredentialMeta['store']) => SecretStore
  state: StateStore
  warn: (message: string) => void
}

/**
 * Stores a credential: the secret document in the store first, then the index entry in the state file. If the index
 * cannot be written the secret is removed again, so a failure leaves no half-written credential.
 */
export async function saveCredential(deps: CacheDeps, credential: Credential): Promise<void> {
  const doc: StoredDoc = {
    v: 1,
    accessToken: credential.accessToken,
    tokenType: credential.tokenType,
    ...(credential.idToken ? { idToken: credential.idToken } : {}),
    ...(credential.refreshToken ? { refreshToken: credential.refreshToken } : {}),
    meta: credential.meta,
  }
  const store = deps.storeFor(credential.meta.store)
  await store.set(credential.meta.key, JSON.stringify(doc))
  try {
    deps.state.put(credential.meta)
  } catch (err) {
    await store.delete(credential.meta.key).catch(() => false)
    throw err
  }
}

/** Removes a credential from the store and the state file. */
export async function deleteCredential(deps: CacheDeps, meta: Pick<CredentialMeta, 'key' | 'store'>): Promise<void> {
  deps.state.remove([meta.key])
  await deps.storeFor(meta.store).delete(meta.key)
}

/**
 * Reads the credential for `key`. The state file is the index: with no entry there the store is not touched (a file
 * store would otherwise ask for its passphrase just to find nothing). An entry past its deadline is reported as
 * `expired` and is NOT read from the store; the caller deletes it. A secret that is missing or damaged reads as a
 * miss with a warning, and its leftovers are removed.
 */
export async function readCredential(deps: CacheDeps, key: string, now: number): Promise<CacheRead> {
  const meta = deps.state.get(key)
  if (!meta) return { kind: 'miss' }
  if (isExpired(endOf(meta), now)) return { kind: 'expired', meta }
  const store = deps.storeFor(meta.store)
  const raw = await store.get(key)
  if (raw === undefined) {
    deps.warn(`the cached credential for profile "${meta.profile}" is gone from the ${meta.store === 'keychain' ? 'keychain' : `${meta.store} store`}`)
    deps.state.remove([key])
    return { kind: 'miss' }
  }
  const doc = parseDoc(raw, key)
  if (!doc) {
    deps.warn(`the cached credential for profile "${meta.profile}" is corrupt and was removed`)
    await deleteCredential(deps, meta)
    return { kind: 'miss' }
  }
  // The keychain copy carries its own deadline: whichever of the two is earlier wins, so an edited state file can
  // never stretch a credential's life.
  const deadline = Math.min(meta.deadline, doc.meta.deadline)
  const loginDeadline = Math.min(meta.loginDeadline ?? Infinity, doc.meta.loginDeadline ?? Infinity)
  const refreshable = meta.refreshable === true && doc.meta.refreshable === true && typeof doc.refreshToken === 'string' && Number.isFinite(loginDeadline)
  const merged = { ...doc.meta, deadline, refreshable, ...(Number.isFinite(loginDeadline) ? { loginDeadline } : {}) }
  if (isExpired(endOf(merged), now)) return { kind: 'expired', meta: { ...meta, deadline } }
  return {
    kind: isExpired(deadline, now) ? 'stale' : 'hit',
    credential: {
      meta: merged,
      accessToken: doc.accessToken,
      tokenType: doc.tokenType,
      ...(doc.idToken ? { idToken: doc.idToken } : {}),
      ...(doc.refreshToken ? { refreshToken: doc.refreshToken } : {}),
    },
  }
}

/** Reads the secret of a credential as stored, whatever its deadline (for revocation); undefined when unreadable. */
export async function peekCredential(deps: CacheDeps, meta: CredentialMeta): Promise<Credential | undefined> {
  const raw = await deps.storeFor(meta.store).get(meta.key)
  const doc = raw === undefined ? undefined : parseDoc(raw, meta.key)
  if (!doc) return undefined
  return {
    meta: doc.meta,
    accessToken: doc.accessToken,
    tokenType: doc.tokenType,
    ...(doc.idToken ? { idToken: doc.idToken } : {}),
    ...(doc.refreshToken ? { refreshToken: doc.refreshToken } : {}),
  }
}

function parseDoc(raw: string, key: string): StoredDoc | undefined {
  try {
    const doc = JSON.parse(raw) as StoredDoc
    if (
      doc?.v === 1 &&
      typeof doc.accessToken === 'string' &&
      doc.accessToken !== '' &&
      typeof doc.meta?.deadline === 'number' &&
      doc.meta.key === key
    ) {
      return doc
    }
  } catch {
    // fall through: a damaged value is a miss
  }
  return undefined
}

/**
 * Deletes every credential whose deadline has passed, from the state file's deadlines alone: when nothing is due the
 * store is never touched. Returns the metadata of what was removed.
 */
export async function removeExpired(deps: CacheDeps, now: number, only?: (meta: CredentialMeta) => boolean): Promise<CredentialMeta[]> {
  const due = deps.state.list().filter((m) => isExpired(endOf(m), now) && (only ? only(m) : true))
  if (due.length === 0) return []
  deps.state.remove(due.map((m) => m.key))
  for (const meta of due) {
    try {
      await deps.storeFor(meta.store).delete(meta.key)
    } catch {
      // The state entry is gone, so the credential is never served; the keychain leftover goes with `logout --all`.
    }
  }
  return due
}
