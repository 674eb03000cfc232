import type { SecretStore } from './secret-store.js'

/**
 * A {@link SecretStore} that keeps values in this process only (`--store none`, and tests). `entries` is the live map,
 * for tests to inspect or damage.
 */
export function memoryStore(initial: Record<string, string> = {}): SecretStore & { readonly entries: Map<string, string> } {
  const entries = new Map(Object.entries(initial))
  return {
    kind: 'none',
    entries,
    get: async (key) => entries.get(key),
    set: async (key, value) => {
      entries.set(key, value)
    },
    delete: async (key) => entries.delete(key),
    probe: async () => {},
  }
}
