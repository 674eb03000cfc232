import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { hostname, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { ErrorCode, JitError } from '../errors.js'

/** Releases a held lock. */
export type Release = () => void

/** Options of {@link acquireLock}. */
export interface LockOptions {
  /** Give up after this long (ms). */
  timeoutMs: number
  /** How often to look again while another process holds it (ms). */
  pollMs?: number
  /** A lock older than this is taken over even if its owner seems alive (a process on another host, a reused pid). */
  staleMs?: number
  sleep: (ms: number) => Promise<void>
  now: () => number
}

/**
 * The per-user lock folder, apart from the data: `$XDG_RUNTIME_DIR/jit/locks` where there is one, else
 * `<tmp>/jit-<uid>/locks`. Created 0700; a folder owned by another user is refused, so no one can block or spoof
 * another user's locks.
 */
export function lockDir(env: Readonly<Record<string, string | undefined>>): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined
  const base = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'jit') : join(tmpdir(), `jit-${uid ?? userInfo().username}`)
  const dir = join(base, 'locks')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  for (const d of [base, dir]) {
    const st = lstatSync(d)
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
      throw new JitError(ErrorCode.STORE_UNAVAILABLE, `the lock folder "${d}" is not a folder owned by you`, {
        hint: 'remove it, or set XDG_RUNTIME_DIR to a private folder',
      })
    }
  }
  return dir
}

interface Owner {
  pid: number
  host: string
  at: number
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the lock file `<dir>/<name>.lock` (created with O_EXCL, holding the owner's pid, host and time). While another
 * live process holds it, waits; a lock whose owner on this host is gone (killed with SIGKILL, say) or that is older
 * than `staleMs` is taken over.
 *
 * @throws JitError `JIT_LOCK_TIMEOUT` after `timeoutMs`.
 */
export async function acquireLock(dir: string, name: string, opts: LockOptions): Promise<Release> {
  const path = join(dir, `${name}.lock`)
  const deadline = opts.now() + opts.timeoutMs
  const host = hostname()
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host, at: opts.now() } satisfies Owner))
      } finally {
        closeSync(fd)
      }
      let released = false
      return () => {
        if (released) return
        released = true
        rmSync(path, { force: true })
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let owner: Owner | undefined
    try {
      owner = JSON.parse(readFileSync(path, 'utf8')) as Owner
    } catch {
      // Half-written by an owner that is writing right now, or gone between our two calls: look again.
    }
    const stale =
      owner !== undefined &&
      ((owner.host === host && !alive(owner.pid)) || opts.now() - owner.at > (opts.staleMs ?? 10 * 60_000))
    if (stale) {
      rmSync(path, { force: true })
      continue
    }
    if (opts.now() >= deadline) {
      throw new JitError(ErrorCode.LOCK_TIMEOUT, `another jit process (pid ${owner?.pid ?? '?'}) has been getting this credential for too long`, {
        hint: `try again; if no jit is running, remove ${path}`,
      })
    }
    await opts.sleep(opts.pollMs ?? 50)
  }
}
