import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ErrorCode, JitError } from '../errors.js'
import { readJsonFile, withFileLockSync, writeFileAtomic } from './atomic-file.js'
import type { SecretStore } from './secret-store.js'

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, opts: object) => Promise<Buffer>

interface Sealed {
  iv: string
  tag: string
  ct: string
}

interface FileDoc {
  jit: 'file-store'
  v: 1
  kdf: { name: 'scrypt'; salt: string; N: number; r: number; p: number }
  check: Sealed
  entries: Record<string, Sealed>
}

const CHECK_PLAINTEXT = 'jit-file-store-v1'
const HINT = 'set JIT_STORE_KEY to the passphrase of the file store, or use --store keychain / --store none'

/** Options of {@link fileStore}. */
export interface FileStoreOptions {
  /** Folder of `secrets.enc.json` (the config folder). */
  dir: string
  /** Returns the passphrase: `JIT_STORE_KEY`, or a prompt on a terminal. Called at most once. */
  passphrase: () => Promise<string | undefined>
  /** scrypt cost; tests lower it. */
  cost?: number
}

/**
 * An encrypted file store for machines with no keychain: one file, each value sealed with AES-256-GCM under a key
 * derived by scrypt from a passphrase, the entry's name bound as associated data so sealed values cannot be swapped.
 * A wrong passphrase is detected (`JIT_STORE_UNAVAILABLE`) rather than read as empty; a damaged entry reads as a miss.
 */
export function fileStore(options: FileStoreOptions): SecretStore {
  const path = join(options.dir, 'secrets.enc.json')
  let key: Buffer | undefined

  const loadDoc = (): FileDoc | undefined => {
    const read = readJsonFile(path)
    if (read.kind === 'missing') return undefined
    const doc = read.kind === 'ok' ? (read.value as FileDoc) : undefined
    if (!doc || doc.jit !== 'file-store' || doc.v !== 1 || typeof doc.kdf?.salt !== 'string' || typeof doc.entries !== 'object') {
      throw new JitError(ErrorCode.STORE_UNAVAILABLE, `the file store "${path}" is damaged`, {
        hint: `move it aside and log in again: mv "${path}" "${path}.bad"`,
      })
    }
    return doc
  }

  const unlock = async (): Promise<{ key: Buffer; doc: FileDoc }> => {
    const existing = loadDoc()
    if (key && existing) return { key, doc: existing }
    const pass = await options.passphrase()
    if (!pass) {
      throw new JitError(ErrorCode.STORE_UNAVAILABLE, 'the file store needs a passphrase and none was given', { hint: HINT })
    }
    const N = options.cost ?? 2 ** 15
    if (!existing) {
      const created = withFileLockSync(path, () => loadDoc())
      if (created) return unlock()
      const salt = randomBytes(16)
      const derived = await scrypt(pass, salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 })
      const doc: FileDoc = {
        jit: 'file-store',
        v: 1,
        kdf: { name: 'scrypt', salt: salt.toString('base64'), N, r: 8, p: 1 },
        check: seal(derived, '\0check', CHECK_PLAINTEXT),
        entries: {},
      }
      const winner = withFileLockSync(path, () => {
        const raced = loadDoc()
        if (raced) return raced
        writeFileAtomic(path, JSON.stringify(doc))
        return undefined
      })
      // Another process created the store first: use its salt.
      if (winner) return unlock()
      key = derived
      return { key, doc }
    }
    const { salt, N: n, r, p } = existing.kdf
    const derived = await scrypt(pass, Buffer.from(salt, 'base64'), 32, { N: n, r, p, maxmem: 256 * n * r })
    if (open(derived, '\0check', existing.check) !== CHECK_PLAINTEXT) {
      throw new JitError(ErrorCode.STORE_UNAVAILABLE, 'wrong passphrase for the file store', { hint: HINT })
    }
    key = derived
    return { key, doc: existing }
  }

  return {
    kind: 'file',
    async probe() {
      await unlock()
    },
    async get(name) {
      const { key: k, doc } = await unlock()
      const sealed = doc.entries[name]
      return sealed ? open(k, name, sealed) : undefined
    },
    async set(name, value) {
      const { key: k } = await unlock()
      const sealed = seal(k, name, value)
      // Re-read inside the lock: another jit process may have written other entries since we unlocked.
      withFileLockSync(path, () => {
        const doc = loadDoc()
        if (!doc) throw new JitError(ErrorCode.STORE_UNAVAILABLE, `the file store "${path}" disappeared while in use`)
        doc.entries[name] = sealed
        writeFileAtomic(path, JSON.stringify(doc))
      })
    },
    async delete(name) {
      // Deleting needs no passphrase: the entry is removed whole, never decrypted.
      return withFileLockSync(path, () => {
        const doc = loadDoc()
        if (!doc || !(name in doc.entries)) return false
        delete doc.entries[name]
        writeFileAtomic(path, JSON.stringify(doc))
        return true
      })
    },
  }
}

function seal(key: Buffer, name: string, plaintext: string): Sealed {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(name, 'utf8'))
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ct: ct.toString('base64') }
}

function open(key: Buffer, name: string, sealed: Sealed): string | undefined {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'))
    decipher.setAAD(Buffer.from(name, 'utf8'))
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'))
    return Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64')), decipher.final()]).toString('utf8')
  } catch {
    return undefined
  }
}
