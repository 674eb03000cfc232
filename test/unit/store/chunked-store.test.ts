import { describe, expect, it } from 'vitest'
import { chunkedStore, chunkPartKey, isChunkPartKey } from '../../../src/store/chunked-store.js'
import { memoryStore } from '../../../src/store/memory-store.js'
import type { SecretStore } from '../../../src/store/secret-store.js'
import { describeSecretStoreContract, longValue } from './secret-store-contract.js'

describeSecretStoreContract('chunkedStore(memoryStore)', async () => chunkedStore(memoryStore()))

const KEY = 'prod/0123abcd'
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

function setup(maxChunk?: number) {
  const inner = memoryStore()
  const writes: string[] = []
  const recording: SecretStore = {
    ...inner,
    set: async (k, v) => {
      writes.push(k)
      await inner.set(k, v)
    },
  }
  const store = chunkedStore(recording, maxChunk === undefined ? {} : { maxChunk })
  return { inner, store, writes }
}

describe('chunkedStore', () => {
  it('stores a value that fits as-is, under its key alone', async () => {
    const { inner, store } = setup()
    const value = longValue(1200)
    await store.set(KEY, value)
    expect([...inner.entries.keys()]).toEqual([KEY])
    expect(inner.entries.get(KEY)).toBe(value)
  })

  it('splits a long value into parts of at most maxChunk, writing the header last', async () => {
    const { inner, store, writes } = setup()
    const value = longValue(6 * 1024)
    await store.set(KEY, value)
    expect(writes).toEqual([1, 2, 3, 4, 5, 6].map((i) => chunkPartKey(KEY, i)).concat(KEY))
    const header = JSON.parse(inner.entries.get(KEY) ?? '') as Record<string, unknown>
    expect(header).toEqual({ jit: 'chunked', v: 1, n: 6, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) })
    for (let i = 1; i <= 6; i++) expect(inner.entries.get(chunkPartKey(KEY, i))?.length).toBeLessThanOrEqual(1200)
    expect(await store.get(KEY)).toBe(value)
  })

  it('never splits a surrogate pair across parts', async () => {
    const { inner, store } = setup(4)
    const value = 'abc🔑def🔑🔑g'
    await store.set(KEY, value)
    const parts = [...inner.entries].filter(([k]) => isChunkPartKey(k)).map(([, v]) => v)
    expect(parts.length).toBeGreaterThan(1)
    for (const part of parts) expect(part).not.toMatch(loneSurrogate)
    expect(await store.get(KEY)).toBe(value)
  })

  it.each([
    ['a header', '{"jit":"chunked","v":1,"n":1,"sha256":"' + '0'.repeat(64) + '"}'],
    ['an escaped value', '{"jit":"plain"}{"jit":"chunked"}'],
  ])('escapes a short value that looks like %s, and reads it back as itself', async (_label, lookalike) => {
    const { inner, store } = setup()
    await store.set(KEY, lookalike)
    expect([...inner.entries.keys()]).toEqual([KEY])
    expect(inner.entries.get(KEY)).not.toBe(lookalike)
    expect(await store.get(KEY)).toBe(lookalike)
  })

  it('splits a long value that starts like a header, and reads it back as itself', async () => {
    const { inner, store } = setup(50)
    const lookalike = '{"jit":"chunked","v":1,"n":1,"sha256":"' + '0'.repeat(64) + '"}' + longValue(100)
    await store.set(KEY, lookalike)
    expect(inner.entries.has(chunkPartKey(KEY, 2))).toBe(true)
    expect(await store.get(KEY)).toBe(lookalike)
  })

  it('round-trips assorted values in tiny parts', async () => {
    const { store } = setup(2)
    for (const value of ['', 'a', 'ab', 'abc', '🔑', 'a🔑', '🔑🔑b', 'héllo 東京 👩🏽‍💻', '{"jit":"chunked"', longValue(99)]) {
      await store.set(KEY, value)
      expect(await store.get(KEY)).toBe(value)
    }
  })

  it('works over another chunkedStore', async () => {
    const inner = memoryStore()
    const store = chunkedStore(chunkedStore(inner, { maxChunk: 500 }), { maxChunk: 300 })
    const value = longValue(1000)
    await store.set(KEY, value)
    expect(await store.get(KEY)).toBe(value)
    expect(await store.delete(KEY)).toBe(true)
    expect(inner.entries.size).toBe(0)
  })

  it('reads a missing part as a miss', async () => {
    const { inner, store } = setup(100)
    await store.set(KEY, longValue(350))
    inner.entries.delete(chunkPartKey(KEY, 2))
    expect(await store.get(KEY)).toBeUndefined()
  })

  it('reads a corrupted part (checksum mismatch) as a miss', async () => {
    const { inner, store } = setup(100)
    await store.set(KEY, longValue(350))
    const part = inner.entries.get(chunkPartKey(KEY, 3)) ?? ''
    inner.entries.set(chunkPartKey(KEY, 3), (part[0] === 'x' ? 'y' : 'x') + part.slice(1))
    expect(await store.get(KEY)).toBeUndefined()
  })

  it('reads swapped parts as a miss', async () => {
    const { inner, store } = setup(100)
    await store.set(KEY, longValue(300))
    const [a, b] = [inner.entries.get(chunkPartKey(KEY, 1)) ?? '', inner.entries.get(chunkPartKey(KEY, 2)) ?? '']
    inner.entries.set(chunkPartKey(KEY, 1), b)
    inner.entries.set(chunkPartKey(KEY, 2), a)
    expect(await store.get(KEY)).toBeUndefined()
  })

  it.each([
    ['truncated JSON', '{"jit":"chunked","v":1,"n":2'],
    ['an unknown version', '{"jit":"chunked","v":2,"n":1,"sha256":"' + 'a'.repeat(64) + '"}'],
    ['a bad count', '{"jit":"chunked","v":1,"n":0,"sha256":"' + 'a'.repeat(64) + '"}'],
    ['a bad checksum field', '{"jit":"chunked","v":1,"n":1,"sha256":"zz"}'],
  ])('reads a header with %s as a miss', async (_label, header) => {
    const { inner, store } = setup()
    inner.entries.set(KEY, header)
    inner.entries.set(chunkPartKey(KEY, 1), 'part')
    expect(await store.get(KEY)).toBeUndefined()
  })

  it('reads a write cut short before its header as the old value or a miss, never a mix', async () => {
    const inner = memoryStore()
    let failAt: string | undefined
    const flaky: SecretStore = {
      ...inner,
      set: async (k, v) => {
        if (k === failAt) throw new Error('crash')
        await inner.set(k, v)
      },
    }
    const store = chunkedStore(flaky, { maxChunk: 100 })

    await store.set(KEY, 'old plain value')
    failAt = KEY
    await expect(store.set(KEY, longValue(250))).rejects.toThrow('crash')
    expect(await store.get(KEY)).toBe('old plain value')

    failAt = undefined
    const old = longValue(250)
    await store.set(KEY, old)
    failAt = KEY
    await expect(store.set(KEY, longValue(260).replace(/t/g, 'T'))).rejects.toThrow('crash')
    expect(await store.get(KEY)).toBeUndefined()

    failAt = chunkPartKey(KEY, 2)
    await expect(store.set(KEY, longValue(500))).rejects.toThrow('crash')
    expect(await store.get(KEY)).toBeUndefined()
  })

  it('leaves no orphan parts when a value shrinks', async () => {
    const { inner, store } = setup(100)
    await store.set(KEY, longValue(480))
    expect(inner.entries.size).toBe(6)
    await store.set(KEY, longValue(150))
    expect([...inner.entries.keys()].sort()).toEqual([KEY, chunkPartKey(KEY, 1), chunkPartKey(KEY, 2)].sort())
    expect(await store.get(KEY)).toBe(longValue(150))
    await store.set(KEY, 'short')
    expect([...inner.entries.keys()]).toEqual([KEY])
    expect(await store.get(KEY)).toBe('short')
  })

  it('sweeps parts left past the header by a write cut short', async () => {
    const { inner, store } = setup(100)
    inner.entries.set(chunkPartKey(KEY, 1), 'orphan 1')
    inner.entries.set(chunkPartKey(KEY, 2), 'orphan 2')
    inner.entries.set(chunkPartKey(KEY, 3), 'orphan 3')
    await store.set(KEY, longValue(150))
    expect(inner.entries.has(chunkPartKey(KEY, 3))).toBe(false)
    expect(await store.delete(KEY)).toBe(true)
    expect(inner.entries.size).toBe(0)
  })

  it('deletes the header and every part, tolerating parts already gone', async () => {
    const { inner, store } = setup(100)
    await store.set(KEY, longValue(450))
    await store.set('other/key', 'kept')
    inner.entries.delete(chunkPartKey(KEY, 2))
    expect(await store.delete(KEY)).toBe(true)
    expect([...inner.entries.keys()]).toEqual(['other/key'])
    expect(await store.delete(KEY)).toBe(false)
  })

  it('keeps the kind of the store it wraps and delegates probe', async () => {
    let probed = 0
    const inner = { ...memoryStore(), kind: 'keychain' as const, probe: async () => void probed++ }
    const store = chunkedStore(inner)
    expect(store.kind).toBe('keychain')
    await store.probe()
    expect(probed).toBe(1)
  })

  it('rejects a maxChunk that cannot hold a whole character', () => {
    expect(() => chunkedStore(memoryStore(), { maxChunk: 1 })).toThrow(RangeError)
    expect(() => chunkedStore(memoryStore(), { maxChunk: 2.5 })).toThrow(RangeError)
    expect(() => chunkedStore(memoryStore(), { maxChunk: Infinity })).not.toThrow()
  })

  it('recognises part keys', () => {
    expect(isChunkPartKey(chunkPartKey(KEY, 1))).toBe(true)
    expect(isChunkPartKey(chunkPartKey(KEY, 12))).toBe(true)
    expect(isChunkPartKey(KEY)).toBe(false)
    expect(isChunkPartKey(`${KEY}#0`)).toBe(false)
  })
})
