import type * as KeyringModule from '@napi-rs/keyring'
import type { AsyncEntry, EntryOptions } from '@napi-rs/keyring'
import { randomBytes } from 'node:crypto'
import { ErrorCode, JitError } from '../errors.js'
import type { SecretStore } from './secret-store.js'

type Keyring = typeof KeyringModule

/** Options of {@link keychainStore}. */
export interface KeychainStoreOptions {
  /** The keychain service name; default `jit`. */
  service?: string
  /** How long one call may take, in ms; default 3000. */
  timeoutMs?: number
  /** Where `DBUS_SESSION_BUS_ADDRESS` is looked up on Linux; default `process.env`. */
  env?: Record<string, string | undefined>
  /** Default `process.platform`. */
  platform?: NodeJS.Platform
}

/** Options of {@link listKeychainAccounts}. */
export type ListKeychainOptions = Omit<KeychainStoreOptions, 'service'>

const DEFAULT_SERVICE = 'jit'
const DEFAULT_TIMEOUT_MS = 3000
const PROBE_ACCOUNT = '__jit_probe__'
const HINT = 'use --store file (an encrypted file; key from JIT_STORE_KEY or a passphrase) or --store none (nothing kept)'

let keyringModule: Promise<Keyring> | undefined

/**
 * A {@link SecretStore} in the OS keychain through `@napi-rs/keyring` (macOS Keychain, Windows Credential Manager,
 * Secret Service on Linux). The native module is loaded on first use. Every call is bounded by `timeoutMs`; a timeout
 * or a backend failure (locked keyring, no Secret Service) throws `JIT_KEYCHAIN_UNAVAILABLE`, a missing entry is a miss.
 */
export function keychainStore(opts: KeychainStoreOptions = {}): SecretStore {
  const service = opts.service ?? DEFAULT_SERVICE
  const guard = callGuard(opts)
  // A new entry opens its own D-Bus connection (about 10 ms, and one more connection on the bus): keep them.
  const entries = new Map<string, AsyncEntry>()

  const entryFor = (keyring: Keyring, account: string): AsyncEntry => {
    let entry = entries.get(account)
    if (!entry) {
      entry = new keyring.AsyncEntry(service, account, guard.entryOptions)
      entries.set(account, entry)
    }
    return entry
  }

  // A failed call drops its entry, so the next one reconnects (the bus or the Secret Service may have restarted).
  const run = async <T>(op: string, key: string, call: (entry: AsyncEntry) => Promise<T>, secret?: string) => {
    try {
      return await guard.run(op, (keyring) => entryFor(keyring, key), call, secret)
    } catch (err) {
      entries.delete(key)
      throw err
    }
  }

  const store: SecretStore = {
    kind: 'keychain',
    get: (key) => run('read', key, async (entry) => (await entry.getPassword()) ?? undefined),
    set: (key, value) => run('write', key, (entry) => entry.setPassword(value), value),
    delete: (key) => run('delete', key, (entry) => entry.deletePassword()),
    probe: async () => {
      const value = randomBytes(12).toString('hex')
      // One deadline for the whole round trip: the probe answers "can a login's result be kept", quickly.
      await run(
        'probe',
        PROBE_ACCOUNT,
        async (entry) => {
          await entry.setPassword(value)
          const read = await entry.getPassword()
          await entry.deletePassword()
          if (read !== value) throw new Error('the keychain did not return what was written')
        },
        value,
      )
    },
  }
  return store
}

/**
 * The accounts stored under `service` (for `logout --all` and the cleanup of expired entries). Bounded by the same
 * timeout as {@link keychainStore}; reading them may unlock the keychain.
 */
export async function listKeychainAccounts(service = DEFAULT_SERVICE, opts: ListKeychainOptions = {}): Promise<string[]> {
  const guard = callGuard(opts)
  const found = await guard.run(
    'list',
    () => service,
    (name, keyring) => keyring.findCredentialsAsync(name),
  )
  return [...new Set(found.map((c) => c.account))].sort()
}

interface CallGuard {
  readonly entryOptions: EntryOptions | undefined
  run<S, T>(
    op: string,
    open: (keyring: Keyring) => S,
    call: (subject: S, keyring: Keyring) => Promise<T>,
    secret?: string,
  ): Promise<T>
}

function callGuard(opts: ListKeychainOptions): CallGuard {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const env = opts.env ?? process.env
  const platform = opts.platform ?? process.platform
  const linux = platform === 'linux'
  // Pinned: with no Secret Service the binding would otherwise fall back to the kernel keyutils store, which reads
  // as empty and then fails a write halfway.
  const entryOptions: EntryOptions | undefined = linux ? { linux: { store: 'secret-service' } } : undefined
  // Native calls that outlived their timeout still hold a libuv thread (a frozen Secret Service never answers
  // findCredentials): while one is pending, fail at once instead of stacking more threads on the same backend.
  let stuck = 0

  const timedOut = (): JitError =>
    new JitError(ErrorCode.KEYCHAIN_UNAVAILABLE, `the keychain did not answer within ${seconds(timeoutMs)}`, {
      hint: HINT,
    })

  async function run<S, T>(
    op: string,
    open: (keyring: Keyring) => S,
    call: (subject: S, keyring: Keyring) => Promise<T>,
    secret?: string,
  ): Promise<T> {
    const started = performance.now()
    if (linux && !env.DBUS_SESSION_BUS_ADDRESS) {
      throw new JitError(ErrorCode.KEYCHAIN_UNAVAILABLE, 'no secret service: DBUS_SESSION_BUS_ADDRESS is not set', {
        hint: HINT,
      })
    }
    if (stuck > 0) throw timedOut()
    let keyring: Keyring
    try {
      keyring = await loadKeyring()
    } catch (err) {
      throw unavailable(`the keychain module could not be loaded: ${shortReason(err)}`, err)
    }
    let work: Promise<T>
    try {
      // Synchronous, and it may block for seconds when the Secret Service is frozen: it counts against the budget.
      const subject = open(keyring)
      work = call(subject, keyring)
    } catch (err) {
      throw backendError(op, err, secret)
    }
    const remaining = timeoutMs - (performance.now() - started)
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        stuck++
        work.then(
          () => stuck--,
          () => stuck--,
        )
        reject(timedOut())
      }, Math.max(0, remaining))
    })
    try {
      return await Promise.race([work, deadline])
    } catch (err) {
      if (err instanceof JitError) throw err
      throw backendError(op, err, secret)
    } finally {
      clearTimeout(timer)
    }
  }

  return { entryOptions, run }
}

function loadKeyring(): Promise<Keyring> {
  keyringModule ??= import('@napi-rs/keyring').catch((err: unknown) => {
    keyringModule = undefined
    throw err
  })
  return keyringModule
}

function backendError(op: string, err: unknown, secret: string | undefined): JitError {
  const raw = err instanceof Error ? err.message : String(err)
  // Shorter strings would match ordinary words; jit's values are long JSON documents.
  const sensitive = secret !== undefined && secret.length >= 8 ? secret : undefined
  const leaks = sensitive !== undefined && raw.includes(sensitive)
  const reason = shortReason(err, sensitive)
  return unavailable(`keychain ${op} failed: ${reason}`, leaks ? undefined : err)
}

function unavailable(message: string, cause: unknown): JitError {
  return new JitError(ErrorCode.KEYCHAIN_UNAVAILABLE, message, { hint: HINT, cause })
}

/** The backend's reason in a few lowercase words: wrappers and D-Bus error names dropped, first sentence only. */
function shortReason(err: unknown, secret?: string): string {
  let text = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''
  if (secret) text = text.split(secret).join('[redacted]')
  for (;;) {
    const next = text.replace(/^\s*(couldn't access platform storage|platform failure|dbus error|zbus error):\s*/i, '')
    if (next === text) break
    text = next
  }
  text = text.replace(/^(?:[a-z0-9_]+\.){2,}[A-Za-z0-9_]+:\s*/i, '')
  text = text.split(/\.\s/)[0] ?? text
  text = text.replace(/\.$/, '').trim()
  if (/^[A-Z][a-z]+(?:[A-Z][a-z]+)+$/.test(text)) text = text.replace(/(?!^)([A-Z])/g, ' $1')
  text = text.toLowerCase()
  if (text.length > 160) text = `${text.slice(0, 157)}...`
  return text || 'unknown error'
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(2))}s`
}
