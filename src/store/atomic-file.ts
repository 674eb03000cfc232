import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { dirname, join, basename } from 'node:path'

/** Creates a folder (and parents) readable by the owner only. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  try {
    chmodSync(dir, 0o700)
  } catch {
    // Not ours to change (e.g. a shared parent given as JIT_CONFIG_DIR): the files inside are still 0600.
  }
}

/**
 * Writes a file so readers see either the old or the new content, never a mix: a 0600 temp file in the same folder,
 * fsync, then rename over the target.
 */
export function writeFileAtomic(path: string, data: string): void {
  ensurePrivateDir(dirname(path))
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      writeSync(fd, data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

/** What {@link readJsonFile} found. */
export type JsonRead = { kind: 'ok'; value: unknown } | { kind: 'missing' } | { kind: 'corrupt'; reason: string }

/** Reads and parses a JSON file; a missing file and a corrupt one are results, not exceptions. */
export function readJsonFile(path: string): JsonRead {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
    return { kind: 'corrupt', reason: (err as Error).message }
  }
  try {
    return { kind: 'ok', value: JSON.parse(text) }
  } catch (err) {
    return { kind: 'corrupt', reason: (err as Error).message.split('\n')[0] ?? 'invalid JSON' }
  }
}

/** Moves a corrupt file aside (`<name>.corrupt-<time>`) so the next write does not destroy what a person may recover. */
export function quarantine(path: string, now: number): string | undefined {
  const target = `${path}.corrupt-${new Date(now).toISOString().replace(/[:.]/g, '-')}`
  try {
    renameSync(path, target)
    return target
  } catch {
    return undefined
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))

/**
 * Runs `fn` while holding `<path>.lock` (O_EXCL), so read-modify-write of a shared file by parallel jit processes
 * loses no update. Synchronous on purpose: the sections are a read and an atomic write, a few ms. A lock older than
 * 10 s is left by a dead process and is taken over.
 */
export function withFileLockSync<T>(path: string, fn: () => T): T {
  const lock = `${path}.lock`
  ensurePrivateDir(dirname(path))
  const started = Date.now()
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let age: number
      try {
        age = Date.now() - statSync(lock).mtimeMs
      } catch {
        continue
      }
      if (age > 10_000) {
        rmSync(lock, { force: true })
        continue
      }
      if (Date.now() - started > 30_000) throw new Error(`timed out waiting for ${lock}`, { cause: err })
      Atomics.wait(sleeper, 0, 0, 5)
    }
  }
  try {
    return fn()
  } finally {
    rmSync(lock, { force: true })
  }
}
