import type { StoreKind } from '../config/profile.js'
import type { CacheDeps } from '../core/credential-cache.js'
import type { CredentialMeta, StateStore } from '../core/ports.js'
import type { Deps } from '../deps.js'
import { ErrorCode, JitError } from '../errors.js'
import { fileStore } from '../store/file-store.js'
import { memoryStore } from '../store/memory-store.js'
import type { SecretStore } from '../store/secret-store.js'
import { stateFile } from '../store/state-file.js'

/** The stores of one invocation: the chosen one for writes, and each entry's own for reads and deletes. */
export type Stores = CacheDeps & { store: SecretStore }

/**
 * Builds the stores for `dir`. The keychain is the default; on Linux a missing D-Bus session is caught by its probe
 * before a login starts. `none` keeps nothing: a memory store and a memory state.
 */
export function openStores(deps: Deps, dir: string, chosen: StoreKind, warn: (m: string) => void, opts: { interactive: boolean }): Stores {
  const made = new Map<StoreKind, SecretStore>()
  const storeFor = (kind: StoreKind): SecretStore => {
    let store = made.get(kind)
    if (!store) {
      store = kind === 'keychain' ? deps.keychain() : kind === 'file' ? makeFileStore(deps, dir, opts.interactive) : memoryStore()
      made.set(kind, store)
    }
    return store
  }
  const state = chosen === 'none' ? memoryState() : stateFile(dir, warn, () => deps.clock.now())
  return { storeFor, state, warn, store: storeFor(chosen) }
}

function makeFileStore(deps: Deps, dir: string, interactive: boolean): SecretStore {
  return fileStore({
    dir,
    passphrase: async () => {
      if (deps.env.JIT_STORE_KEY) return deps.env.JIT_STORE_KEY
      // Only a login may ask: jit token and the others run in scripts, where a prompt would hang.
      if (!interactive || deps.env.CI === 'true') {
        throw new JitError(ErrorCode.STORE_UNAVAILABLE, 'the file store needs its passphrase in JIT_STORE_KEY here', {
          hint: 'set JIT_STORE_KEY, or use --store none',
        })
      }
      return deps.readSecret('passphrase for the jit file store: ')
    },
  })
}

function memoryState(): StateStore {
  const entries = new Map<string, CredentialMeta>()
  return {
    list: () => [...entries.values()],
    get: (k) => entries.get(k),
    put: (m) => {
      entries.set(m.key, m)
    },
    remove: (keys) => {
      for (const k of keys) entries.delete(k)
    },
  }
}
