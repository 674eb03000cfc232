import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCode, JitError } from '../../src/errors.js'
import { chunkedStore, chunkPartKey } from '../../src/store/chunked-store.js'
import { keychainStore, listKeychainAccounts } from '../../src/store/keychain-store.js'
import { componentGate, describeWithComponent } from '../support/components.js'
import { keyringAvailability, type PrivateKeyring, startPrivateKeyring } from '../support/keyring.js'
import { describeSecretStoreContract, longValue } from '../unit/store/secret-store-contract.js'

const gate = componentGate('a Secret Service (gnome-keyring, dbus, libsecret-tools)', keyringAvailability)
const HINT = /--store file.*--store none/

const newService = (): string => `jit-test-${randomBytes(4).toString('hex')}`

/** Runs `fn`, returning how long it took in ms and what it threw (or `undefined`). */
async function timed(fn: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now()
  try {
    await fn()
    return { ms: performance.now() - started, error: undefined }
  } catch (error) {
    return { ms: performance.now() - started, error }
  }
}

function expectUnavailable(error: unknown, message?: RegExp): JitError {
  expect(error).toBeInstanceOf(JitError)
  const err = error as JitError
  expect(err.code).toBe(ErrorCode.KEYCHAIN_UNAVAILABLE)
  expect(err.hint).toMatch(HINT)
  expect(err.message).toMatch(/^[a-z][^\n]*[^.]$/)
  if (message) expect(err.message).toMatch(message)
  return err
}

const report = (what: string, ms: number, error?: unknown): void =>
  console.info(`[keychain timing] ${what}: ${ms.toFixed(1)} ms${error instanceof Error ? ` (${error.message})` : ''}`)

describeWithComponent('keychainStore on a private gnome-keyring', gate, () => {
  const savedBus = process.env.DBUS_SESSION_BUS_ADDRESS
  let ring: PrivateKeyring

  beforeAll(async () => {
    const started = performance.now()
    ring = await startPrivateKeyring()
    report('start private bus + gnome-keyring', performance.now() - started)
    process.env.DBUS_SESSION_BUS_ADDRESS = ring.env.DBUS_SESSION_BUS_ADDRESS
    // libdbus keeps the first session bus address it sees: prove the private keyring is the one in use.
    const service = newService()
    const canary = keychainStore({ service })
    await canary.set('canary', 'x')
    const seen = await ring.listAccounts(service)
    await canary.delete('canary')
    if (seen.length !== 1) throw new Error('@napi-rs/keyring is not talking to the private keyring (bus chosen earlier in this process?)')
  })

  afterAll(async () => {
    if (savedBus === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS
    else process.env.DBUS_SESSION_BUS_ADDRESS = savedBus
    await ring?.stop()
  })

  describeSecretStoreContract('keychainStore', async () => keychainStore({ service: newService() }))
  describeSecretStoreContract('chunkedStore(keychainStore)', async () =>
    chunkedStore(keychainStore({ service: newService() })),
  )

  it('probes with a round trip and leaves nothing behind', async () => {
    const service = newService()
    const store = keychainStore({ service })
    const first = await timed(() => store.probe())
    const second = await timed(() => store.probe())
    expect(first.error).toBeUndefined()
    expect(second.error).toBeUndefined()
    report('probe, first (opens the entry)', first.ms)
    report('probe, warm', second.ms)
    expect(await ring.listAccounts(service)).toEqual([])
  })

  it('answers get and set within a few ms once an entry is open', async () => {
    const store = keychainStore({ service: newService() })
    const open = await timed(() => store.set('timing/key', 'v0'))
    const runs = 20
    let setMs = 0
    let getMs = 0
    for (let i = 0; i < runs; i++) {
      setMs += (await timed(() => store.set('timing/key', `v${i}`))).ms
      getMs += (await timed(() => store.get('timing/key'))).ms
    }
    report('first set of a key (new entry + D-Bus session)', open.ms)
    report(`set, warm (mean of ${runs})`, setMs / runs)
    report(`get, warm (mean of ${runs})`, getMs / runs)
    const value = longValue(6 * 1024)
    const chunked = chunkedStore(keychainStore({ service: newService() }))
    const bigSet = await timed(() => chunked.set('timing/big', value))
    const bigGet = await timed(() => chunked.get('timing/big'))
    report('chunked 6 KB set, first (7 new entries)', bigSet.ms)
    report('chunked 6 KB get', bigGet.ms)
    expect(getMs / runs).toBeLessThan(100)
  })

  it('fails at once when DBUS_SESSION_BUS_ADDRESS is not set, before touching the keychain', async () => {
    const store = keychainStore({ service: newService(), env: {}, platform: 'linux' })
    for (const call of [() => store.probe(), () => store.get('k'), () => store.set('k', 'v'), () => store.delete('k')]) {
      const { ms, error } = await timed(call)
      expectUnavailable(error, /^no secret service: DBUS_SESSION_BUS_ADDRESS is not set$/)
      expect(ms).toBeLessThan(50)
    }
    const listed = await timed(() => listKeychainAccounts('jit', { env: {}, platform: 'linux' }))
    expectUnavailable(listed.error, /DBUS_SESSION_BUS_ADDRESS/)
  })

  it('writes entries that secret-tool finds, and lists them', async () => {
    const service = newService()
    const store = chunkedStore(keychainStore({ service }))
    await store.set('prod/aaaa', 'short')
    await store.set('dev/bbbb', longValue(2000))
    const expected = ['prod/aaaa', 'dev/bbbb', chunkPartKey('dev/bbbb', 1), chunkPartKey('dev/bbbb', 2)].sort()
    expect(await ring.listAccounts(service)).toEqual(expected)
    const listed = await timed(() => listKeychainAccounts(service))
    report(`listKeychainAccounts (${expected.length} entries)`, listed.ms)
    expect(await listKeychainAccounts(service)).toEqual(expected)
    expect(await listKeychainAccounts(newService())).toEqual([])
    await store.delete('dev/bbbb')
    expect(await ring.listAccounts(service)).toEqual(['prod/aaaa'])
  })

  // libdbus reads the session bus address once per process, so these cannot get keyrings of their own: they run
  // last, in this order, on the shared one (frozen then resumed, then locked, then killed).
  describe('when the keyring misbehaves', () => {
    it('frozen: a call ends at the timeout, and later calls fail at once until it settles', async () => {
      const timeoutMs = 500
      const store = keychainStore({ service: newService(), timeoutMs })
      await store.set('frozen/key', 'v')
      ring.suspend()
      try {
        const get = await timed(() => store.get('frozen/key'))
        report(`frozen: get on an open entry (timeout ${timeoutMs} ms)`, get.ms, get.error)
        expectUnavailable(get.error, /^the keychain did not answer within 0\.5s$/)
        expect(get.ms).toBeGreaterThanOrEqual(timeoutMs - 5)
        expect(get.ms).toBeLessThan(timeoutMs + 250)

        const again = await timed(() => store.get('frozen/key'))
        report('frozen: next call while the first is still pending', again.ms, again.error)
        expectUnavailable(again.error, /did not answer/)
        expect(again.ms).toBeLessThan(50)

        // A new entry connects synchronously; @napi-rs/keyring gives up on a silent service after about 2 s.
        const fresh = await timed(() => keychainStore({ service: newService(), timeoutMs }).get('new'))
        report('frozen: first call on a new store (blocks the event loop in the constructor)', fresh.ms, fresh.error)
        expectUnavailable(fresh.error)
        expect(fresh.ms).toBeLessThan(5000)

        const list = await timed(() => listKeychainAccounts('jit', { timeoutMs }))
        report('frozen: listKeychainAccounts', list.ms, list.error)
        expectUnavailable(list.error, /did not answer/)
        expect(list.ms).toBeLessThan(timeoutMs + 250)
      } finally {
        ring.resume()
      }
      const started = performance.now()
      let recovered: unknown = 'never'
      while (performance.now() - started < 10_000) {
        const { error } = await timed(async () => expect(await store.get('frozen/key')).toBe('v'))
        if (error === undefined) {
          recovered = undefined
          break
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      report('frozen: back to normal after resume', performance.now() - started)
      expect(recovered).toBeUndefined()
    })

    it('locked: fails fast with the reason, never the value', async () => {
      const service = newService()
      const store = keychainStore({ service })
      const secret = `secret-${randomBytes(8).toString('hex')}`
      await store.set('locked/key', secret)
      await ring.lock()

      const get = await timed(() => store.get('locked/key'))
      const set = await timed(() => store.set('locked/key', secret))
      const probe = await timed(() => store.probe())
      const fresh = await timed(() => keychainStore({ service: newService() }).get('other'))
      const list = await timed(() => listKeychainAccounts(service))
      report('locked: get', get.ms, get.error)
      report('locked: set', set.ms, set.error)
      report('locked: probe', probe.ms, probe.error)
      report('locked: get of a missing key on a new store', fresh.ms, fresh.error)
      report('locked: listKeychainAccounts', list.ms, list.error)
      for (const { ms, error } of [get, set, probe]) {
        const err = expectUnavailable(error, /^keychain (read|write|probe) failed: .*unlock prompt was dismissed/)
        expect(err.message).not.toContain(secret)
        expect(ms).toBeLessThan(1000)
      }
      // Nothing to unlock for an absent item: a miss, not an error.
      expect(fresh.error).toBeUndefined()
      expectUnavailable(list.error, /^keychain list failed: cannot get secret of a locked object$/)
    })

    it('dead: with the daemon gone, calls fail fast and nothing falls back to the kernel keyring', async () => {
      const store = keychainStore({ service: newService() })
      // The keyring is locked by now: reading an absent item still works, and opens the entry.
      expect(await store.get('dead/open')).toBeUndefined()
      await ring.killDaemon()

      const openGet = await timed(() => store.get('dead/open'))
      const freshGet = await timed(() => store.get('dead/new'))
      const freshSet = await timed(() => store.set('dead/new', 'v'))
      const probe = await timed(() => store.probe())
      report('dead: get on an open entry', openGet.ms, openGet.error)
      report('dead: get on a new entry', freshGet.ms, freshGet.error)
      report('dead: set on a new entry', freshSet.ms, freshSet.error)
      report('dead: probe', probe.ms, probe.error)
      for (const { ms, error } of [openGet, freshGet, freshSet, probe]) {
        expectUnavailable(error, /^keychain (read|write|probe) failed: /)
        expect(ms).toBeLessThan(1000)
      }
      // The unpinned binding would read a miss here (the kernel keyring) instead of failing.
      expect((freshGet.error as JitError).message).toMatch(/org\.freedesktop\.secrets/)
    })
  })
})
