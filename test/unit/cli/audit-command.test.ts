import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { afterEach, describe, expect, it } from 'vitest'
import { fileAuditLog } from '../../../src/audit/audit-log.js'
import { auditCommand } from '../../../src/cli/commands/audit.js'
import { makeCtx } from '../../../src/cli/context.js'
import type { AuditEvent } from '../../../src/core/ports.js'
import { testDeps, type TestDeps } from '../../support/deps.js'

const HOUR = 3_600_000
let deps: TestDeps | undefined

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail' && deps) console.error(`stdout:\n${deps.io.stdout()}\nstderr:\n${deps.io.stderr()}`)
  deps?.cleanup()
  deps = undefined
})

function setup(opts: Parameters<typeof testDeps>[0] = {}): { deps: TestDeps; events: AuditEvent[] } {
  deps = testDeps(opts)
  const now = deps.clock.now()
  const at = (ms: number) => new Date(now - ms).toISOString()
  const events: AuditEvent[] = [
    { time: at(3 * HOUR), event: 'issued', profile: 'prod', issuer: 'https://idp.example', scopes: ['openid', 'db:read'], fingerprint: 'aaaa1111', note: 'INC-1234' },
    { time: at(30 * 60_000), event: 'used', profile: 'prod', scopes: ['openid', 'db:read'], fingerprint: 'aaaa1111', via: 'exec', command: 'psql' },
    { time: at(20 * 60_000), event: 'refused', profile: 'dev', scopes: ['admin'], reason: 'JIT_ACCESS_DENIED: the grant was broader than asked' },
    { time: at(10 * 60_000), event: 'revoked', profile: 'prod', fingerprint: 'aaaa1111', detail: 'the JWT access token stays valid until exp' },
  ]
  const log = fileAuditLog(deps.dir)
  for (const e of events) log.append(e)
  return { deps, events }
}

async function run(d: TestDeps, args: string[]): Promise<Command> {
  const cmd = auditCommand(makeCtx(d))
  cmd.exitOverride().configureOutput({ writeOut: (s) => d.io.out.write(s), writeErr: (s) => d.io.err.write(s) })
  await cmd.parseAsync(args, { from: 'user' })
  return cmd
}

function jsonLines(text: string): AuditEvent[] {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditEvent)
}

describe('jit audit', () => {
  it('--since 1h --json: the recent events as JSON Lines on stdout, nothing on stderr', async () => {
    const { deps, events } = setup()
    await run(deps, ['--since', '1h', '--json'])
    expect(jsonLines(deps.io.stdout())).toEqual(events.slice(1))
    expect(deps.io.stderr()).toBe('')
  })

  it.each([
    ['--profile', ['--profile', 'dev'], ['refused']],
    ['-p with --event', ['-p', 'prod', '--event', 'issued,revoked'], ['issued', 'revoked']],
    ['a repeated --event', ['--event', 'used', '--event', 'refused'], ['used', 'refused']],
    ['an ISO date', ['--since', '2000-01-01'], ['issued', 'used', 'refused', 'revoked']],
    ['--since 2h', ['--since', '2h'], ['used', 'refused', 'revoked']],
  ])('filters by %s', async (_name, args, expected) => {
    const { deps } = setup()
    await run(deps, [...args, '--json'])
    expect(jsonLines(deps.io.stdout()).map((e) => e.event)).toEqual(expected)
  })

  it('filters by JIT_PROFILE when no --profile is given', async () => {
    const { deps } = setup({ env: { JIT_PROFILE: 'dev' } })
    await run(deps, ['--json'])
    expect(jsonLines(deps.io.stdout()).map((e) => e.profile)).toEqual(['dev'])
  })

  it('prints one plain line per event for people, without colour off a terminal', async () => {
    const { deps } = setup()
    await run(deps, [])
    const lines = deps.io.stdout().split('\n')
    expect(lines).toHaveLength(5)
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}issued {8}prod {2}db:read {2}aaaa1111 {2}note="INC-1234"$/)
    expect(lines[1]).toMatch(/ {2}used {10}prod {2}db:read {2}aaaa1111 {2}via=exec {2}command=psql$/)
    expect(lines[2]).toMatch(/ {2}refused {7}dev {2}admin {2}- {2}reason="JIT_ACCESS_DENIED: the grant was broader than asked"$/)
    expect(lines[3]).toMatch(/ {2}revoked {7}prod {2}- {2}aaaa1111 {2}detail="the JWT access token stays valid until exp"$/)
    // eslint-disable-next-line no-control-regex
    expect(deps.io.stdout()).not.toMatch(/\u001b\[/)
    expect(deps.io.stderr()).toBe('')
  })

  it.each([
    ['a terminal', {}, true],
    ['a terminal with NO_COLOR', { NO_COLOR: '1' }, false],
  ])('colours the event name on %s', async (_name, env, coloured) => {
    const { deps } = setup({ tty: true, env })
    await run(deps, ['--event', 'issued'])
    // eslint-disable-next-line no-control-regex
    expect(/\u001b\[32missued/.test(deps.io.stdout())).toBe(coloured)
  })

  it('says so on stderr, and exits 0, when nothing matches', async () => {
    const { deps } = setup()
    await run(deps, ['--profile', 'nobody', '--json'])
    expect(deps.io.stdout()).toBe('')
    expect(deps.io.stderr()).toBe(`no audit events for profile "nobody" in ${join(deps.dir, 'audit.log')}\n`)
  })

  it('says so when there is no audit log at all', async () => {
    deps = testDeps()
    await run(deps, [])
    expect(deps.io.stdout()).toBe('')
    expect(deps.io.stderr()).toContain('no audit events in ')
  })

  it('warns once about corrupt lines and shows the rest', async () => {
    const { deps, events } = setup()
    appendFileSync(join(deps.dir, 'audit.log'), 'garbage\n{"half":\n')
    await run(deps, ['--json'])
    expect(jsonLines(deps.io.stdout())).toEqual(events)
    expect(deps.io.stderr()).toBe('warning: 2 lines of the audit log could not be read and were skipped\n')
  })

  it.each([
    ['an unknown event', ['--event', 'issued,stolen'], 'JIT_USAGE', /unknown --event "stolen"/],
    ['a bad duration', ['--since', 'yesterday'], 'JIT_INVALID_TTL', /invalid --since "yesterday"/],
    ['a bad date', ['--since', '2025-13-45'], 'JIT_USAGE', /invalid --since "2025-13-45": not a valid date/],
  ])('refuses %s as a usage error', async (_name, args, code, message) => {
    const { deps } = setup()
    await expect(run(deps, args)).rejects.toMatchObject({ code, message: expect.stringMatching(message) as unknown })
    expect(deps.io.stdout()).toBe('')
  })

  it('--help says where the file is, how to ship it, and gives examples', async () => {
    deps = testDeps()
    await expect(run(deps, ['--help'])).rejects.toMatchObject({ code: 'commander.helpDisplayed' })
    const help = deps.io.stdout()
    expect(help).toContain(join(deps.dir, 'audit.log'))
    expect(help).toContain('JSON')
    expect(help).toMatch(/SIEM/)
    expect(help).toContain('$ jit audit --since 24h')
  })
})
