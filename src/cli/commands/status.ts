import { Command } from 'commander'
import { formatDuration } from '../../core/duration.js'
import { status } from '../../core/status.js'
import type { Ctx } from '../context.js'
import { loadConfig } from '../resolve.js'
import { openStores } from '../stores.js'

/** `jit status`: what is cached, per profile, from the state file alone. */
export function statusCommand(ctx: Ctx): Command {
  return new Command('status')
    .description('show cached credentials: scopes, audience, time left and what set the deadline')
    .option('-p, --profile <name>', 'only this profile (env JIT_PROFILE)')
    .option('--json', 'print JSON on stdout')
    .addHelpText('after', '\nExamples:\n  $ jit status\n  $ jit status -p prod --json | jq \'.credentials[0].expires_in\'')
    .action(async (flags: { profile?: string; json?: boolean }) => {
      const { deps, style } = ctx
      const { dir } = loadConfig(deps, ctx.warn)
      const stores = openStores(deps, dir, 'keychain', ctx.warn, { interactive: false })
      const profile = flags.profile ?? deps.env.JIT_PROFILE
      const result = await status({ ...stores, clock: deps.clock }, profile ? { profile } : {})
      if (result.removed.length) (await import('../audit-events.js')).expiredEvents(ctx, result.removed)
      if (flags.json) {
        deps.io.out.write(
          `${JSON.stringify(
            {
              credentials: result.entries.map((e) => ({
                profile: e.profile,
                issuer: e.issuer,
                client_id: e.clientId,
                subject: e.subject ?? null,
                scope: e.scopes.join(' '),
                resource: e.resources,
                audience: e.audience ?? null,
                obtained_at: new Date(e.obtainedAt).toISOString(),
                expires_at: new Date(e.deadline).toISOString(),
                expires_in: Math.max(0, Math.floor(e.remainingMs / 1000)),
                capped_by: e.cappedBy,
                refreshable_until: e.refreshableUntil !== undefined ? new Date(e.refreshableUntil).toISOString() : null,
                store: e.store,
                flow: e.flow,
              })),
              removed_expired: result.removed.map((m) => ({ profile: m.profile, expired_at: new Date(m.deadline).toISOString() })),
            },
            null,
            2,
          )}\n`,
        )
        return
      }
      for (const m of result.removed) {
        deps.io.err.write(`${style.dim(`removed an expired credential of profile "${m.profile}" (expired ${new Date(m.deadline).toISOString()})`)}\n`)
      }
      if (result.entries.length === 0) {
        deps.io.err.write(`no cached credentials${profile ? ` for profile "${profile}"` : ''}\n`)
        deps.io.err.write(`run: jit login${profile ? ` --profile ${profile}` : ''}\n`)
        return
      }
      for (const e of result.entries) {
        const scopes = e.scopes.filter((s) => s !== 'openid')
        const lines = [
          `${style.bold(e.profile)}  ${e.issuer}${e.subject ? `  (${e.subject})` : ''}`,
          `  scope     ${scopes.length ? scopes.join(' ') : '(default)'}`,
          ...(e.resources.length ? [`  resource  ${e.resources.join(' ')}`] : []),
          ...(e.audience ? [`  audience  ${e.audience}`] : []),
          `  expires   ${new Date(e.deadline).toISOString()}  ${style.green(`${formatDuration(e.remainingMs)} left`)}  (set by ${e.cappedBy})`,
          ...(e.refreshableUntil !== undefined ? [`  refresh   until ${new Date(e.refreshableUntil).toISOString()} (the login's TTL)`] : []),
          `  store     ${e.store}`,
        ]
        deps.io.err.write(`${lines.join('\n')}\n`)
      }
    })
}
