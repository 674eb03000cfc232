import { Chalk, type ChalkInstance } from 'chalk'
import { Command } from 'commander'
import { join } from 'node:path'
import { AUDIT_EVENT_TYPES, AUDIT_FILE, readAudit, type AuditFilter } from '../../audit/audit-log.js'
import { configDir } from '../../config/config-file.js'
import { parseDuration } from '../../core/duration.js'
import type { AuditEvent, AuditEventType } from '../../core/ports.js'
import { ErrorCode, JitError } from '../../errors.js'
import type { Env, IO } from '../../platform/io.js'
import type { Ctx } from '../context.js'

interface AuditFlags {
  since?: string
  profile?: string
  event?: string[]
  json?: boolean
}

/** `--since`: a duration back from now (`24h`, `7d`) or an ISO 8601 date or time. */
function parseSince(text: string, now: number): number {
  if (/^\d{4}-\d{2}-\d{2}/.test(text.trim())) {
    const ms = Date.parse(text.trim())
    if (Number.isNaN(ms)) {
      throw new JitError(ErrorCode.USAGE, `invalid --since "${text}": not a valid date`, {
        hint: 'use a duration (24h, 7d) or an ISO date (2025-01-31, 2025-01-31T09:00:00Z)',
      })
    }
    return ms
  }
  return now - parseDuration(text, '--since')
}

function parseEvents(values: readonly string[]): AuditEventType[] {
  const names = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '')
  const unknown = names.filter((n) => !(AUDIT_EVENT_TYPES as readonly string[]).includes(n))
  if (unknown.length) {
    throw new JitError(ErrorCode.USAGE, `unknown --event "${unknown.join(',')}"`, { hint: `events: ${AUDIT_EVENT_TYPES.join(', ')}` })
  }
  return [...new Set(names)] as AuditEventType[]
}

/** Colours for stdout, which here carries what the person asked for: only on a terminal, never with `NO_COLOR`. */
function stdoutStyle(io: IO, env: Env): ChalkInstance {
  const enabled = io.isOutTTY && env.NO_COLOR === undefined && env.TERM !== 'dumb'
  return new Chalk({ level: enabled ? 1 : 0 })
}

function colourEvent(style: ChalkInstance, event: AuditEventType, text: string): string {
  switch (event) {
    case 'issued':
      return style.green(text)
    case 'used':
      return style.cyan(text)
    case 'revoked':
      return style.magenta(text)
    case 'expired':
      return style.yellow(text)
    case 'refused':
    case 'login_failed':
      return style.red(text)
  }
}

const EVENT_WIDTH = Math.max(...AUDIT_EVENT_TYPES.map((e) => e.length))

/** One line per event: time, event, profile, scopes, fingerprint, then whatever else the event carries. */
function humanLine(style: ChalkInstance, e: AuditEvent): string {
  const scopes = (e.scopes ?? []).filter((s) => s !== 'openid')
  const extras = [
    e.via && `via=${e.via}`,
    e.command && `command=${e.command}`,
    e.note && `note=${JSON.stringify(e.note)}`,
    e.reason && `reason=${JSON.stringify(e.reason)}`,
    e.detail && `detail=${JSON.stringify(e.detail)}`,
  ].filter((x): x is string => typeof x === 'string' && x !== '')
  return [
    e.time.replace(/\.\d+Z$/, 'Z'),
    colourEvent(style, e.event, e.event.padEnd(EVENT_WIDTH)),
    e.profile,
    scopes.length ? scopes.join(' ') : '-',
    e.fingerprint ?? '-',
    ...extras,
  ].join('  ')
}

/** `jit audit`: the local audit trail, read from `audit.log` and its rotated files. */
export function auditCommand(ctx: Ctx): Command {
  const dir = configDir(ctx.deps.env)
  return new Command('audit')
    .description('show the local audit trail: issued, used, refused, expired, revoked, login_failed')
    .option('--since <when>', 'only events since a duration ago (24h, 7d) or an ISO date (2025-01-31)')
    .option('-p, --profile <name>', 'only this profile (env JIT_PROFILE)')
    .option(
      '--event <types>',
      `only these events, comma-separated or repeated (${AUDIT_EVENT_TYPES.join(', ')})`,
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--json', 'print the events as JSON Lines on stdout')
    .addHelpText(
      'after',
      `
The trail is ${join(dir, AUDIT_FILE)}
(JIT_CONFIG_DIR moves it): JSON Lines, mode 0600, rotated at 1 MiB into
${AUDIT_FILE}.1 ... ${AUDIT_FILE}.5, but never before the current day is 4 MiB.
It holds no token or secret: a short fingerprint names the credential, and
for jit exec only the command's name is kept, never its arguments.

To ship it to a SIEM, point a log shipper's file input (Vector, Fluent Bit,
Filebeat) at that file and parse each line as JSON, or pipe jit audit --json.
See docs/audit.md.

Examples:
  $ jit audit --since 24h
  $ jit audit -p prod --event issued,refused
  $ jit audit --since 2025-01-31 --json | jq -r 'select(.event == "used") | .command'
  $ jit audit --since 24h --json | curl -sS --data-binary @- https://siem.example.com/ingest`,
    )
    .action((flags: AuditFlags) => {
      const { deps } = ctx
      const profile = flags.profile ?? deps.env.JIT_PROFILE
      const filter: AuditFilter = {
        ...(flags.since !== undefined ? { since: parseSince(flags.since, deps.clock.now()) } : {}),
        ...(profile ? { profile } : {}),
        ...(flags.event?.length ? { events: parseEvents(flags.event) } : {}),
      }
      const { events, corruptLines } = readAudit(dir, filter)
      if (corruptLines > 0) {
        ctx.warn(`${corruptLines} line${corruptLines === 1 ? '' : 's'} of the audit log could not be read and ${corruptLines === 1 ? 'was' : 'were'} skipped`)
      }
      if (events.length === 0) {
        const scope = [
          profile && `profile "${profile}"`,
          flags.since !== undefined && `since ${flags.since}`,
          filter.events && `event ${filter.events.join(',')}`,
        ].filter((x): x is string => typeof x === 'string')
        deps.io.err.write(`no audit events${scope.length ? ` for ${scope.join(', ')}` : ''} in ${join(dir, AUDIT_FILE)}\n`)
        return
      }
      if (flags.json) {
        deps.io.out.write(events.map((e) => `${JSON.stringify(e)}\n`).join(''))
        return
      }
      const style = stdoutStyle(deps.io, deps.env)
      deps.io.out.write(events.map((e) => `${humanLine(style, e)}\n`).join(''))
    })
}
