import type { AuditLog, Browser, LoopbackPort, OidcPort } from './core/ports.js'
import { realSleep, systemClock, type Clock, type Sleep } from './platform/clock.js'
import { processIO, type Env, type IO } from './platform/io.js'
import type { SecretStore } from './store/secret-store.js'

/**
 * Everything jit needs from the outside world. `createDeps()` is the one place that builds the real ones; tests
 * pass their own (a fixed clock, captured IO, a memory store, a scripted fetch).
 */
export interface Deps {
  clock: Clock
  sleep: Sleep
  io: IO
  env: Env
  platform: NodeJS.Platform
  /** The provider adapter, loaded on first use (a cache hit never loads openid-client). */
  oidc: () => Promise<OidcPort>
  /** The browser opener, loaded on first use. */
  browser: () => Promise<Browser>
  /** The loopback redirect listener of the browser flow, loaded on first use. */
  loopback: () => Promise<LoopbackPort>
  /** The OS keychain (service `jit`). */
  keychain: () => SecretStore
  /** Lists keychain accounts of service `jit`, for cleanup of entries the state file lost. */
  listKeychainKeys: () => Promise<string[]>
  /** Reads a secret from the terminal without echo; `undefined` when there is no terminal. */
  readSecret: (prompt: string) => Promise<string | undefined>
  /** The audit trail; absent: `audit.log` in the config folder. */
  audit?: AuditLog
  /** Subscribes to Ctrl-C (SIGINT/SIGTERM); returns the unsubscribe function. */
  onInterrupt: (handler: () => void) => () => void
}

/** The real dependencies of a jit process. */
export function createDeps(overrides: Partial<Deps> = {}): Deps {
  const env = overrides.env ?? process.env
  const io = overrides.io ?? processIO()
  let keychain: SecretStore | undefined
  return {
    clock: systemClock,
    sleep: realSleep,
    io,
    env,
    platform: process.platform,
    oidc: async () => {
      const { createOidc } = await import('./oidc/index.js')
      return createOidc()
    },
    browser: async () => {
      const { systemBrowser } = await import('./platform/browser.js')
      return systemBrowser(env)
    },
    loopback: async () => {
      const { loopbackPort } = await import('./oidc/loopback-server.js')
      return loopbackPort()
    },
    keychain: () => {
      keychain ??= lazyKeychain(env, process.platform)
      return keychain
    },
    listKeychainKeys: async () => {
      const { listKeychainAccounts } = await import('./store/keychain-store.js')
      return listKeychainAccounts('jit')
    },
    readSecret: async (prompt) => {
      const { readSecretFromTTY } = await import('./platform/prompt.js')
      return readSecretFromTTY(io, prompt)
    },
    onInterrupt: (handler) => {
      process.on('SIGINT', handler)
      process.on('SIGTERM', handler)
      return () => {
        process.off('SIGINT', handler)
        process.off('SIGTERM', handler)
      }
    },
    ...overrides,
  }
}

/** The keychain store, imported on first call so commands that never touch it do not load the native binding. */
function lazyKeychain(env: Env, platform: NodeJS.Platform): SecretStore {
  let real: Promise<SecretStore> | undefined
  const load = (): Promise<SecretStore> => {
    // Only Windows Credential Manager caps a secret (about 2.5 KB); elsewhere splitting would only add D-Bus round trips.
    real ??= Promise.all([import('./store/keychain-store.js'), import('./store/chunked-store.js')]).then(([k, c]) =>
      c.chunkedStore(k.keychainStore({ env, platform }), { maxChunk: platform === 'win32' ? 1200 : Infinity }),
    )
    return real
  }
  return {
    kind: 'keychain',
    get: async (key) => (await load()).get(key),
    set: async (key, value) => (await load()).set(key, value),
    delete: async (key) => (await load()).delete(key),
    probe: async () => (await load()).probe(),
  }
}
