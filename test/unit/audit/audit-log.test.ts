import { spawn, spawnSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { fileAuditLog, memoryAuditLog, readAudit, scrubAuditEvent, REDACTED } from '../../../src/audit/audit-log.js'
import type { AuditEvent } from '../../../src/core/ports.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const DAY = 86_400_000
const NOW = Date.parse('2025-03-10T12:00:00.000Z')
const posix = process.platform !== 'win32'

const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'jit-audit-'))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function ev(over: Partial<AuditEvent> = {}): AuditEvent {
  return { time: new Date(NOW).toISOString(), event: 'issued', profile: 'prod', scopes: ['openid', 'db:read'], fingerprint: 'a1b2c3d4e5f6', ...over }
}

function oldFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^audit\.log\.\d+$/.test(n)).sort()
}

describe('fileAuditLog and readAudit', () => {
  it('round-trips events as JSON Lines, oldest first', () => {
    const dir = tempDir()
    const log = fileAuditLog(dir, { now: () => NOW })
    const events: AuditEvent[] = [
      ev(),
      ev({ event: 'used', via: 'exec', command: 'psql', time: new Date(NOW + 1000).toISOString() }),
      ev({ event: 'revoked', detail: 'the JWT access token stays valid until exp', time: new Date(NOW + 2000).toISOString() }),
    ]
    for (const e of events) log.append(e)

    expect(log.path).toBe(join(dir, 'audit.log'))
    const lines = readFileSync(log.path, 'utf8').split('\n')
    expect(lines).toHaveLength(4)
    expect(lines[3]).toBe('')
    expect(lines.slice(0, 3).map((l) => JSON.parse(l) as unknown)).toEqual(events)
    // Fields are written in the schema's order, whatever the caller's, so lines read alike.
    expect(lines[1]).toMatch(/^\{"time":.*,"event":"used","profile":"prod","scopes":.*,"fingerprint":.*,"via":"exec","command":"psql"\}$/)
    expect(readAudit(dir, {})).toEqual({ events, corruptLines: 0 })
  })

  it.skipIf(!posix)('creates the file 0600 in a 0700 folder, and tightens a file left wider', () => {
    const dir = join(tempDir(), 'nested', 'jit')
    fileAuditLog(dir).append(ev())
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(join(dir, 'audit.log')).mode & 0o777).toBe(0o600)

    const other = tempDir()
    writeFileSync(join(other, 'audit.log'), '', { mode: 0o644 })
    fileAuditLog(other).append(ev())
    expect(statSync(join(other, 'audit.log')).mode & 0o777).toBe(0o600)
  })

  it('reads a missing trail as empty', () => {
    expect(readAudit(join(tempDir(), 'nothing-here'), {})).toEqual({ events: [], corruptLines: 0 })
  })

  it.each([
    ['since', { since: NOW - 2 * 3_600_000 }, ['b', 'c']],
    ['profile', { profile: 'dev' }, ['b']],
    ['events', { events: ['issued', 'refused'] as const }, ['a', 'c']],
    ['all together', { since: NOW - 2 * 3_600_000, profile: 'prod', events: ['refused'] as const }, ['c']],
    ['an empty event list', { events: [] }, ['a', 'b', 'c']],
  ])('filters by %s', (_name, filter, notes) => {
    const dir = tempDir()
    const log = fileAuditLog(dir, { now: () => NOW })
    log.append(ev({ note: 'a', time: new Date(NOW - 3 * 3_600_000).toISOString() }))
    log.append(ev({ note: 'b', profile: 'dev', event: 'used', via: 'token', time: new Date(NOW - 3_600_000).toISOString() }))
    log.append(ev({ note: 'c', event: 'refused', reason: 'JIT_ACCESS_DENIED: scope too broad', time: new Date(NOW).toISOString() }))
    expect(readAudit(dir, filter).events.map((e) => e.note)).toEqual(notes)
  })

  it('skips and counts lines that are not JSON events', () => {
    const dir = tempDir()
    const log = fileAuditLog(dir)
    log.append(ev({ note: 'first' }))
    appendFileSync(log.path, 'not json\n{"time":"2025-03-10T12:00:00.000Z","event":"nonsense","profile":"p"}\n[]\n\n')
    log.append(ev({ note: 'second' }))
    appendFileSync(log.path, '{"time":"2025-03-10T12:00:00.000Z","ev')
    const read = readAudit(dir, {})
    expect(read.events.map((e) => e.note)).toEqual(['first', 'second'])
    expect(read.corruptLines).toBe(4)
  })
})

describe('scrubbing', () => {
  const jwt = `eyJhbGciOiJSUzI1NiJ9.${'eyJzdWIiOiJhbGljZSJ9'.repeat(2)}.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU`

  it('redacts JWT-looking and overlong values and drops fields outside the schema', () => {
    const dir = tempDir()
    const log = fileAuditLog(dir)
    log.append({
      ...ev({ note: jwt, reason: 'x'.repeat(501), detail: 'y'.repeat(500), scopes: ['db:read', jwt], audience: 'api.example.com' }),
      access_token: 'opaque-secret-value',
      via: 'sideways',
    } as unknown as AuditEvent)

    const text = readFileSync(log.path, 'utf8')
    expect(text).not.toContain(jwt)
    expect(text).not.toContain('opaque-secret-value')
    const [event] = readAudit(dir, {}).events
    expect(event).toEqual({
      time: new Date(NOW).toISOString(),
      event: 'issued',
      profile: 'prod',
      scopes: ['db:read', REDACTED],
      fingerprint: 'a1b2c3d4e5f6',
      audience: 'api.example.com',
      note: REDACTED,
      reason: REDACTED,
      detail: 'y'.repeat(500),
    })
  })

  it.each([
    ['a short dotted value', 'api.read.write', 'api.read.write'],
    ['a URL', `https://${'a'.repeat(30)}.example.com/path`, `https://${'a'.repeat(30)}.example.com/path`],
    ['a JWT', jwt, REDACTED],
    ['501 characters', 'z'.repeat(501), REDACTED],
  ])('%s', (_name, value, expected) => {
    expect(scrubAuditEvent(ev({ note: value }))?.note).toBe(expected)
  })

  it.each([
    ['no profile', { time: 't', event: 'issued' }],
    ['an unknown event', { time: 't', event: 'hacked', profile: 'p' }],
    ['not an object', 'issued'],
  ])('refuses %s', (_name, input) => {
    expect(scrubAuditEvent(input)).toBeUndefined()
  })
})

describe('rotation', () => {
  const line = (over: Partial<AuditEvent>) => `${JSON.stringify(ev(over))}\n`.length

  it('rotates past maxBytes and keeps at most 5 old files, newest in .1', () => {
    const dir = tempDir()
    const maxBytes = 400
    const log = fileAuditLog(dir, { maxBytes, now: () => NOW })
    const yesterday = new Date(NOW - DAY).toISOString()
    const perFile = Math.floor(maxBytes / line({ time: yesterday, note: '000' })) + 1
    const total = perFile * 9
    for (let i = 0; i < total; i++) log.append(ev({ time: yesterday, note: String(i).padStart(3, '0') }))

    expect(oldFiles(dir)).toEqual(['audit.log.1', 'audit.log.2', 'audit.log.3', 'audit.log.4', 'audit.log.5'])
    const { events, corruptLines } = readAudit(dir, {})
    expect(corruptLines).toBe(0)
    const notes = events.map((e) => Number(e.note))
    // Whatever was dropped is the oldest; what is kept is contiguous, in order, and ends with the last append.
    expect(notes).toEqual(Array.from({ length: notes.length }, (_, i) => total - notes.length + i))
    expect(notes.length).toBeGreaterThanOrEqual(perFile * 5)
    for (const name of ['audit.log', ...oldFiles(dir)]) expect(statSync(join(dir, name)).size).toBeLessThanOrEqual(maxBytes + line({ time: yesterday }))
  })

  it('does not rotate a file whose first event is from today until it reaches 4 × maxBytes', () => {
    const dir = tempDir()
    const maxBytes = 1000
    const log = fileAuditLog(dir, { maxBytes, now: () => NOW })
    const today = new Date(NOW - 3_600_000).toISOString()

    while ((statSync(log.path, { throwIfNoEntry: false })?.size ?? 0) <= 3 * maxBytes) log.append(ev({ time: today }))
    expect(oldFiles(dir)).toEqual([])

    while (statSync(log.path).size < 4 * maxBytes) log.append(ev({ time: today }))
    expect(oldFiles(dir)).toEqual([])
    log.append(ev({ time: today, note: 'after' }))
    expect(oldFiles(dir)).toEqual(['audit.log.1'])
    expect(readAudit(dir, {}).events.at(-1)).toEqual(ev({ time: today, note: 'after' }))
    expect(readFileSync(log.path, 'utf8').split('\n')).toHaveLength(2)
  })

  it('rotates at maxBytes once the day has changed', () => {
    const dir = tempDir()
    let now = NOW
    const log = fileAuditLog(dir, { maxBytes: 500, now: () => now })
    while ((statSync(log.path, { throwIfNoEntry: false })?.size ?? 0) <= 500) log.append(ev())
    expect(oldFiles(dir)).toEqual([])
    now = NOW + DAY
    log.append(ev({ time: new Date(now).toISOString() }))
    expect(oldFiles(dir)).toEqual(['audit.log.1'])
  })
})

describe('failures', () => {
  it('reports the first failure once through onError and never throws', () => {
    const parent = tempDir()
    const blocked = join(parent, 'a-file')
    writeFileSync(blocked, '')
    const errors: string[] = []
    const log = fileAuditLog(join(blocked, 'jit'), { onError: (m) => errors.push(m) })
    expect(() => {
      log.append(ev())
      log.append(ev())
    }).not.toThrow()
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^cannot write the audit log ".*audit\.log": /)
    expect(errors[0]).not.toContain('\n')
  })

  it('drops a malformed event with a report', () => {
    const dir = tempDir()
    const errors: string[] = []
    fileAuditLog(dir, { onError: (m) => errors.push(m) }).append({ time: 'x' } as unknown as AuditEvent)
    expect(errors).toEqual([`cannot write the audit log "${join(dir, 'audit.log')}": the event is malformed and was dropped`])
    expect(existsSync(join(dir, 'audit.log'))).toBe(false)
  })
})

describe('memoryAuditLog', () => {
  it('keeps copies of the events exactly as given', () => {
    const log = memoryAuditLog()
    const e = ev({ note: 'INC-1234' })
    log.append(e)
    e.note = 'changed'
    expect(log.events).toEqual([ev({ note: 'INC-1234' })])
  })
})

describe('parallel processes', () => {
  const built = join(ROOT, 'dist', 'audit', 'audit-log.js')

  beforeAll(() => {
    const sources = ['src/audit/audit-log.ts', 'src/store/atomic-file.ts'].map((p) => statSync(join(ROOT, p)).mtimeMs)
    const stale = !existsSync(built) || statSync(built).mtimeMs < Math.max(...sources)
    if (stale) {
      // tsc emits even when files that others are editing do not typecheck, so only the output is checked.
      spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'ignore' })
    }
    if (!existsSync(built)) throw new Error(`${built} is missing: run npm run build`)
  }, 120_000)

  const child = `
const { fileAuditLog } = await import(process.env.AUDIT_MODULE)
const errors = []
const log = fileAuditLog(process.env.AUDIT_DIR, { maxBytes: Number(process.env.AUDIT_MAX), onError: (m) => errors.push(m) })
for (let i = 0; i < Number(process.env.AUDIT_COUNT); i++) {
  log.append({ time: '2020-01-01T00:00:00.000Z', event: 'used', profile: 'p' + process.env.AUDIT_CHILD, via: 'token', note: String(i) + ' ' + 'x'.repeat(200) })
}
if (errors.length) { console.error(errors.join('\\n')); process.exit(1) }
`

  function run(dir: string, index: number, count: number, maxBytes: number): Promise<number | null> {
    const env = { ...process.env, AUDIT_MODULE: pathToFileURL(built).href, AUDIT_DIR: dir, AUDIT_CHILD: String(index), AUDIT_COUNT: String(count), AUDIT_MAX: String(maxBytes) }
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', child], { env, stdio: ['ignore', 'ignore', 'inherit'] })
      p.on('error', reject)
      p.on('exit', (code) => resolve(code))
    })
  }

  it.each([
    ['without rotation', 1024 * 1024],
    ['while rotating', 40_000],
  ])('%s: 6 processes × 60 appends give exactly 360 complete lines, each process in order', async (_name, maxBytes) => {
    // Given six processes appending at the same time
    const dir = tempDir()
    const codes = await Promise.all(Array.from({ length: 6 }, (_, i) => run(dir, i, 60, maxBytes)))
    expect(codes).toEqual([0, 0, 0, 0, 0, 0])

    // Then every line is whole and none is lost
    const { events, corruptLines } = readAudit(dir, {})
    expect(corruptLines).toBe(0)
    expect(events).toHaveLength(360)
    for (let i = 0; i < 6; i++) {
      const mine = events.filter((e) => e.profile === `p${i}`).map((e) => Number(e.note?.split(' ')[0]))
      expect(mine).toEqual(Array.from({ length: 60 }, (_, n) => n))
    }
    if (maxBytes < 100_000) expect(oldFiles(dir).length).toBeGreaterThan(0)
    expect(readdirSync(dir).filter((n) => n.endsWith('.lock'))).toEqual([])
  })
})
