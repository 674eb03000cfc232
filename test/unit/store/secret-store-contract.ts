import { describe, expect, it } from 'vitest'
import { chunkedStore } from '../../../src/store/chunked-store.js'
import type { SecretStore } from '../../../src/store/secret-store.js'

/**
 * The behaviour every {@link SecretStore} shares. `makeStore` is called once per test and should return an empty
 * store (for a real keychain: a fresh service name).
 */
export function describeSecretStoreContract(name: string, makeStore: () => Promise<SecretStore>): void {
  describe(`${name}: SecretStore contract`, () => {
    const key = (suffix: string): string => `contract/${suffix}`

    it('reads back what was written', async () => {
      const store = await makeStore()
      await store.set(key('a'), 'value-a')
      expect(await store.get(key('a'))).toBe('value-a')
    })

    it('reads a missing key as undefined', async () => {
      const store = await makeStore()
      expect(await store.get(key('missing'))).toBeUndefined()
    })

    it('deletes: true when there was a value, then false, and the value is gone', async () => {
      const store = await makeStore()
      await store.set(key('d'), 'to-delete')
      expect(await store.delete(key('d'))).toBe(true)
      expect(await store.get(key('d'))).toBeUndefined()
      expect(await store.delete(key('d'))).toBe(false)
      expect(await store.delete(key('never-written'))).toBe(false)
    })

    it('overwrites a value', async () => {
      const store = await makeStore()
      await store.set(key('o'), 'first')
      await store.set(key('o'), 'second')
      expect(await store.get(key('o'))).toBe('second')
    })

    it('keeps keys apart', async () => {
      const store = await makeStore()
      await store.set(key('x'), 'x')
      await store.set(key('y'), 'y')
      await store.delete(key('x'))
      expect(await store.get(key('y'))).toBe('y')
    })

    it.each([
      ['accents and CJK', 'héllo wörld — 東京 Привет'],
      ['astral characters', '🔑🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👩🏽‍💻'],
      ['JSON with quotes, backslashes and newlines', JSON.stringify({ a: 'x"y\\z', b: 'line1\nline2\ttab' })],
      ['a value that looks like a chunk header', '{"jit":"chunked","v":1,"n":2,"sha256":"00"}'],
    ])('round-trips %s', async (_label, value) => {
      const store = await makeStore()
      await store.set(key('u'), value)
      expect(await store.get(key('u'))).toBe(value)
    })

    it('stores a 6 KB value through chunkedStore', async () => {
      const store = chunkedStore(await makeStore())
      const value = longValue(6 * 1024)
      await store.set(key('big'), value)
      expect(await store.get(key('big'))).toBe(value)
      expect(await store.delete(key('big'))).toBe(true)
      expect(await store.get(key('big'))).toBeUndefined()
    })

    it('holds many keys', async () => {
      const store = await makeStore()
      const keys = Array.from({ length: 30 }, (_, i) => `profile-${i % 3}/${i.toString(16).padStart(64, '0')}`)
      for (const [i, k] of keys.entries()) await store.set(k, `value-${i}`)
      for (const [i, k] of keys.entries()) expect(await store.get(k)).toBe(`value-${i}`)
      for (const k of keys) expect(await store.delete(k)).toBe(true)
      for (const k of keys) expect(await store.get(k)).toBeUndefined()
    })

    it('probes', async () => {
      const store = await makeStore()
      await expect(store.probe()).resolves.toBeUndefined()
    })
  })
}

/** A string of `length` UTF-16 units, varied (JSON-ish, with astral characters) so misordered parts would show. */
export function longValue(length: number): string {
  let text = ''
  for (let i = 0; text.length < length; i++) text += `{"i":${i},"t":"tok-${(i * 7919).toString(36)}-é🔑"},`
  // Never end on half a surrogate pair.
  let end = length
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return text.slice(0, end)
}
