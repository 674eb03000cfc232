import { join } from 'node:path'
import type { CredentialMeta, StateStore } from '../core/ports.js'
import { quarantine, readJsonFile, withFileLockSync, writeFileAtomic } from './atomic-file.js'

interface StateDoc {
  version: 1
  credentials: Record<string, CredentialMeta>
}

function isMeta(value: unknown): value is CredentialMeta {
  if (value === null || typeof value !== 'object') return false
  const m = value as Record<string, unknown>
  return (
    typeof m.key === 'string' &&
    typeof m.profile === 'string' &&
    typeof m.issuer === 'string' &&
    typeof m.deadline === 'number' &&
    typeof m.obtainedAt === 'number' &&
    Array.isArray(m.scopes) &&
    Array.isArray(m.resources)
  )
}

/**
 * The state file (`state.json` beside the config): non-secret metadata of every cached credential. Writes are atomic;
 * a corrupt file is reported through `warn`, moved aside on the next write, and read as empty.
 */
export function stateFile(dir: string, warn: (message: string) => void, now: () => number): StateStore {
  const path = join(dir, 'state.json')
  let corrupt = false

  const load = (): StateDoc => {
    const read = readJsonFile(path)
    if (read.kind === 'missing') return { version: 1, credentials: {} }
    const doc = read.kind === 'ok' ? read.value : undefined
    if (
      read.kind === 'corrupt' ||
      doc === null ||
      typeof doc !== 'object' ||
      (doc as StateDoc).version !== 1 ||
      typeof (doc as StateDoc).credentials !== 'object'
    ) {
      if (!corrupt) warn(`the state file "${path}" is corrupt and is ignored (${read.kind === 'corrupt' ? read.reason : 'unexpected content'})`)
      corrupt = true
      return { version: 1, credentials: {} }
    }
    const credentials: Record<string, CredentialMeta> = {}
    for (const [key, meta] of Object.entries((doc as StateDoc).credentials ?? {})) {
      if (isMeta(meta) && meta.key === key) credentials[key] = meta
    }
    return { version: 1, credentials }
  }

  const save = (doc: StateDoc): void => {
    if (corrupt) {
      quarantine(path, now())
      corrupt = false
    }
    writeFileAtomic(path, `${JSON.stringify(doc, null, 2)}\n`)
  }

  return {
    list: () => Object.values(load().credentials),
    get: (key) => load().credentials[key],
    put(meta) {
      withFileLockSync(path, () => {
        const doc = load()
        doc.credentials[meta.key] = meta
        save(doc)
      })
    },
    remove(keys) {
      if (keys.length === 0) return
      withFileLockSync(path, () => {
        const doc = load()
        let changed = false
        for (const key of keys) {
          if (key in doc.credentials) {
            delete doc.credentials[key]
            changed = true
          }
        }
        if (changed) save(doc)
      })
    },
  }
}
