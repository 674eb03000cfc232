import { createHash } from 'node:crypto'
import type { SecretStore } from './secret-store.js'

/** Options of {@link chunkedStore}. */
export interface ChunkedStoreOptions {
  /** The longest value (in UTF-16 code units) stored under one key; default 1200, `Infinity` to never split. */
  maxChunk?: number
}

interface Header {
  jit: 'chunked'
  v: 1
  n: number
  sha256: string
}

const HEADER_PREFIX = '{"jit":"chunked"'
/** Put before a plain value that would otherwise read as a header (or as escaped). */
const ESCAPE = '{"jit":"plain"}'
const DEFAULT_MAX_CHUNK = 1200
const MAX_PARTS = 10_000

/** The key of part `index` (from 1) of a chunked value stored under `key`. */
export function chunkPartKey(key: string, index: number): string {
  return `${key}#${index}`
}

/** True for the key of a part written by {@link chunkedStore} (so listings can skip them). */
export function isChunkPartKey(key: string): boolean {
  return /#[1-9][0-9]*$/.test(key)
}

/**
 * Wraps a store whose entries are size-limited (Windows Credential Manager takes about 2.5 KB). A long value is written
 * as parts `key#1`..`key#N`, then a header under `key` naming the count and the SHA-256 of the whole value. Reads
 * check the header against the parts, so a missing or damaged part, or a write cut short, reads as a miss (`undefined`),
 * never as a wrong value.
 */
export function chunkedStore(inner: SecretStore, opts: ChunkedStoreOptions = {}): SecretStore {
  const maxChunk = opts.maxChunk ?? DEFAULT_MAX_CHUNK
  // Two units at least, so a part can always end on a whole character.
  if (!(maxChunk === Infinity || (Number.isSafeInteger(maxChunk) && maxChunk >= 2))) {
    throw new RangeError(`maxChunk must be an integer of at least 2, or Infinity: ${maxChunk}`)
  }

  const partsOf = async (key: string): Promise<number> => {
    const raw = await inner.get(key)
    return raw === undefined ? 0 : (parseHeader(raw)?.n ?? 0)
  }

  /** Deletes parts `from`..`known`, then any further ones up to the first gap (left by a write cut short). */
  const sweep = async (key: string, from: number, known: number): Promise<void> => {
    for (let i = from; i <= MAX_PARTS; i++) {
      const had = await inner.delete(chunkPartKey(key, i))
      if (!had && i > known) return
    }
  }

  return {
    kind: inner.kind,

    async get(key) {
      const raw = await inner.get(key)
      if (raw === undefined) return undefined
      if (raw.startsWith(ESCAPE)) return raw.slice(ESCAPE.length)
      if (!raw.startsWith(HEADER_PREFIX)) return raw
      const header = parseHeader(raw)
      if (!header) return undefined
      const parts = await Promise.all(
        Array.from({ length: header.n }, (_, i) => inner.get(chunkPartKey(key, i + 1))),
      )
      if (parts.some((p) => p === undefined)) return undefined
      const value = parts.join('')
      return sha256(value) === header.sha256 ? value : undefined
    },

    async set(key, value) {
      const old = await partsOf(key)
      // Escaped in place rather than chunked: a chunkedStore over a chunkedStore then keeps its headers whole.
      const stored = value.startsWith(HEADER_PREFIX) || value.startsWith(ESCAPE) ? ESCAPE + value : value
      if (stored.length <= maxChunk) {
        await inner.set(key, stored)
        if (old > 0) await sweep(key, 1, old)
        return
      }
      const parts = split(value, maxChunk)
      if (parts.length > MAX_PARTS) throw new RangeError(`value too long for ${MAX_PARTS} parts of ${maxChunk}`)
      for (const [i, part] of parts.entries()) await inner.set(chunkPartKey(key, i + 1), part)
      // Last: until the header is replaced, the old header no longer matches the new parts and reads as a miss.
      const header: Header = { jit: 'chunked', v: 1, n: parts.length, sha256: sha256(value) }
      await inner.set(key, JSON.stringify(header))
      await sweep(key, parts.length + 1, old)
    },

    async delete(key) {
      const old = await partsOf(key)
      // Parts first: if this is cut short the header still leads the next delete to the rest.
      await sweep(key, 1, old)
      return inner.delete(key)
    },

    probe: () => inner.probe(),
  }
}

function parseHeader(raw: string): Header | undefined {
  if (!raw.startsWith(HEADER_PREFIX)) return undefined
  let doc: unknown
  try {
    doc = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (typeof doc !== 'object' || doc === null) return undefined
  const { jit, v, n, sha256: hash } = doc as Record<string, unknown>
  if (jit !== 'chunked' || v !== 1) return undefined
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > MAX_PARTS) return undefined
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return undefined
  return { jit, v, n, sha256: hash }
}

/** Splits on whole characters: a surrogate pair cut in two would not survive the keychain's UTF-8 round trip. */
function split(value: string, max: number): string[] {
  const parts: string[] = []
  let start = 0
  while (start < value.length) {
    let end = Math.min(start + max, value.length)
    const last = value.charCodeAt(end - 1)
    if (end < value.length && last >= 0xd800 && last <= 0xdbff) end--
    parts.push(value.slice(start, end))
    start = end
  }
  return parts
}

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex')
}
