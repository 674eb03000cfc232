/**
 * Where secrets live. Keys are keychain account names (`<profile>/<sha256>`); values are strings. Implementations:
 * {@link keychainStore} (the OS keychain), `fileStore` (an encrypted file) and `memoryStore` (nothing persisted).
 */
export interface SecretStore {
  /** A short name for messages: `keychain`, `file` or `none`. */
  readonly kind: 'keychain' | 'file' | 'none'
  /** The value, or `undefined` when there is none. Throws `JIT_KEYCHAIN_UNAVAILABLE` on timeout or a dead backend. */
  get(key: string): Promise<string | undefined>
  /** Store a value, replacing any old one. */
  set(key: string, value: string): Promise<void>
  /** Delete a value; `false` when there was none. */
  delete(key: string): Promise<boolean>
  /**
   * Check that the store can be used before a login starts, so a person never completes a login only to lose the
   * result. Throws `JIT_STORE_UNAVAILABLE` / `JIT_KEYCHAIN_UNAVAILABLE` with a hint naming the alternatives.
   */
  probe(): Promise<void>
}
