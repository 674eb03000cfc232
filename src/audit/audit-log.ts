import { appendFileSync, chmodSync, closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { AuditEvent, AuditEventType, AuditLog } from '../core/ports.js'
import { ErrorCode, JitError } from '../errors.js'
import { systemClock } from '../platform/clock.js'
import { ensurePrivateDir, withFileLockSync } from '../store/atomic-file.js'

/** The name of the audit trail in the config folder. Rotated files are `audit.log.1` (newest) … `audit.log.5`. */
export const AUDIT_FILE = 'audit.log'

/** Size above which the audit file is rotated before the next append (1 MiB). */
export const DEFAULT_AUDIT_MAX_BYTES = 1024 * 1024

/** How many rotated files are kept; the oldest is deleted on the next rotation. */
export const AUDIT_KEEP = 5

/** A file whose first event is from today grows to this many times the size limit before it is rotated. */
export const AUDIT_TODAY_FACTOR = 4

/** Every event type, in the order people meet them. */
export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = ['issued', 'used', 'refused', 'expired', 'revoked', 'login_failed']

/** What replaces a value that looks like a token or is too long to be anything an audit line needs. */
export const REDACTED = '[redacted]'

/**
 * The optional fields, in the order they are written (the order of {@link AuditEvent}), and their kinds. The
 * `satisfies` makes a field added to the schema a compile error here until the scrub knows it.
 */
const OPTIONAL_FIELDS = {
  issuer: 'string',
  scopes: 'list',
  resources: 'list',
  audience: 'string',
  deadline: 'string',
  fingerprint: 'string',
  flow: 'string',
  via: 'via',
  command: 'string',
  reason: 'string',
  note: 'string',
  detail: 'string',
} as const satisfies Record<Exclude<keyof AuditEvent, 'time' | 'event' | 'profile'>, 'string' | 'list' | 'via'>
const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]+$/
const MAX_VALUE_CHARS = 500

function safeString(value: string): string {
  if (value.length > MAX_VALUE_CHARS) return REDACTED
  if (value.length > 40 && JWT_SHAPE.test(value)) return REDACTED
  return value
}

function isEventType(value: unknown): value is AuditEventType {
  return typeof value === 'string' && (AUDIT_EVENT_TYPES as readonly string[]).includes(value)
}

/**
 * Returns a copy of `input` that is safe to write: only the fields of {@link AuditEvent}, each of the right type, in
 * the schema's order; string values that look like a JWT (three base64url segments, over 40 characters) or are
 * longer than 500 characters replaced by `[redacted]`. The callers never pass a token; this is the second line of
 * defence.
 *
 * @returns `undefined` when `time`, `event` or `profile` is missing or not valid.
 */
export function scrubAuditEvent(input: unknown): AuditEvent | undefined {
  if (input === null || typeof input !== 'object') return undefined
  const raw = input as Record<string, unknown>
  if (typeof raw.time !== 'string' || typeof raw.profile !== 'string' || !isEventType(raw.event)) return undefined
  const out: Record<string, unknown> = { time: safeString(raw.time), event: raw.event, profile: safeString(raw.profile) }
  for (const [key, kind] of Object.entries(OPTIONAL_FIELDS)) {
    const value = raw[key]
    if (kind === 'string' && typeof value === 'string') out[key] = safeString(value)
    else if (kind === 'list' && Array.isArray(value)) out[key] = value.filter((v): v is string => typeof v === 'string').map(safeString)
    else if (kind === 'via' && (value === 'token' || value === 'exec')) out[key] = value
  }
  return out as unknown as AuditEvent
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/** The UTC day of the first event in the file, or `undefined` when it cannot be read. */
function firstEventDay(path: string): string | undefined {
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(16 * 1024)
    const n = readSync(fd, buf, 0, buf.length, 0)
    const text = buf.subarray(0, n).toString('utf8')
    const end = text.indexOf('\n')
    const first = JSON.parse(end === -1 ? text : text.slice(0, end)) as { time?: unknown }
    const ms = typeof first.time === 'string' ? Date.parse(first.time) : NaN
    return Number.isNaN(ms) ? undefined : utcDay(ms)
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

function rotate(path: string): void {
  rmSync(`${path}.${AUDIT_KEEP}`, { force: true })
  for (let n = AUDIT_KEEP - 1; n >= 1; n--) {
    if (existsSync(`${path}.${n}`)) renameSync(`${path}.${n}`, `${path}.${n + 1}`)
  }
  renameSync(path, `${path}.1`)
}

/** Options of {@link fileAuditLog}. */
export interface FileAuditLogOptions {
  /** Rotation threshold in bytes (default {@link DEFAULT_AUDIT_MAX_BYTES}). */
  maxBytes?: number
  /** The clock that decides what "today" is (UTC), in epoch ms. */
  now?: () => number
  /** Called with a one-line reason for the first failure of this log; later failures are not reported again. */
  onError?: (message: string) => void
}

/**
 * The audit trail as a JSON Lines file, `<dir>/audit.log` (file 0600, folder 0700). Each {@link AuditLog.append}
 * scrubs the event ({@link scrubAuditEvent}) and appends one line under a lock file, so parallel jit processes never
 * interleave or lose lines, nor race a rotation.
 *
 * Rotation, checked before each append: when the file is larger than `maxBytes` it is renamed to `audit.log.1`
 * (older ones shift to `.2` … `.5`; the sixth is deleted). The current day is never rotated away early: when the
 * file's first event is from today (UTC, by `now()`), the file may grow to 4 × `maxBytes` first, so a busy day keeps
 * all its events in the current file. At most 6 files exist, each at most about 4 × `maxBytes`.
 *
 * `append` never throws: an audit failure must not break a login or a command, so it is reported through `onError`
 * (once per log) and the event is dropped.
 */
export function fileAuditLog(dir: string, opts: FileAuditLogOptions = {}): AuditLog & { path: string } {
  const path = join(dir, AUDIT_FILE)
  const maxBytes = opts.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES
  const now = opts.now ?? systemClock.now
  let reported = false
  let modeChecked = false
  const fail = (why: string): void => {
    if (reported) return
    reported = true
    opts.onError?.(`cannot write the audit log "${path}": ${why.split('\n')[0]}`)
  }
  return {
    path,
    append(event) {
      try {
        const clean = scrubAuditEvent(event)
        if (!clean) {
          fail('the event is malformed and was dropped')
          return
        }
        const line = `${JSON.stringify(clean)}\n`
        ensurePrivateDir(dir)
        withFileLockSync(path, () => {
          let size = -1
          try {
            const st = statSync(path)
            size = st.size
            // A file created by someone else (or by hand) with wider permissions is tightened once per process.
            if (!modeChecked && process.platform !== 'win32' && (st.mode & 0o077) !== 0) chmodSync(path, 0o600)
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
          }
          modeChecked = true
          if (size > maxBytes) {
            const keepToday = size < maxBytes * AUDIT_TODAY_FACTOR && firstEventDay(path) === utcDay(now())
            if (!keepToday) rotate(path)
          }
          appendFileSync(path, line, { mode: 0o600 })
        })
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err))
      }
    },
  }
}

/** Filters of {@link readAudit}; all of them must match. */
export interface AuditFilter {
  /** Only events at or after this time (epoch ms). */
  since?: number
  profile?: string
  /** Only these event types (empty or missing: all). */
  events?: readonly AuditEventType[]
}

/** The files of the trail, oldest first: `audit.log.N` … `audit.log.1`, `audit.log`. */
function auditFiles(dir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const rotated = names
    .map((name) => /^audit\.log\.(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]))
    .map((m) => m[0])
  return [...rotated, ...(names.includes(AUDIT_FILE) ? [AUDIT_FILE] : [])].map((name) => join(dir, name))
}

/**
 * Reads the audit trail in `dir`, oldest file first, so events come in the order they were appended. Lines that are
 * not a JSON event (a torn write, a hand edit) are skipped and counted in `corruptLines`; fields outside the schema
 * are dropped, as on write.
 *
 * @throws JitError `JIT_CONFIG` when a file exists but cannot be read (permissions). A missing trail is empty.
 */
export function readAudit(dir: string, filter: AuditFilter = {}): { events: AuditEvent[]; corruptLines: number } {
  const events: AuditEvent[] = []
  let corruptLines = 0
  const wanted = filter.events?.length ? new Set<string>(filter.events) : undefined
  let files: string[]
  try {
    files = auditFiles(dir)
  } catch (err) {
    throw new JitError(ErrorCode.CONFIG, `cannot read the audit log folder "${dir}": ${(err as Error).message}`, { cause: err })
  }
  for (const file of files) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      // Rotated away between the listing and the read: its lines are in the next file now.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw new JitError(ErrorCode.CONFIG, `cannot read the audit log "${file}": ${(err as Error).message}`, { cause: err })
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue
      let parsed: unknown
      try {
        parsed = JSON.parse(line)
      } catch {
        corruptLines++
        continue
      }
      const event = scrubAuditEvent(parsed)
      if (!event) {
        corruptLines++
        continue
      }
      if (filter.since !== undefined && !(Date.parse(event.time) >= filter.since)) continue
      if (filter.profile !== undefined && event.profile !== filter.profile) continue
      if (wanted && !wanted.has(event.event)) continue
      events.push(event)
    }
  }
  return { events, corruptLines }
}

/**
 * An in-memory {@link AuditLog} for tests. It keeps each event exactly as the caller passed it (a copy, not
 * scrubbed), so a test can assert that a use case never hands a token to the audit log in the first place.
 */
export function memoryAuditLog(): AuditLog & { events: AuditEvent[] } {
  const events: AuditEvent[] = []
  return {
    events,
    append(event) {
      events.push(structuredClone(event))
    },
  }
}
