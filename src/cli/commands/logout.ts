import { Command } from 'commander'
import { logout } from '../../core/logout.js'
import { ErrorCode, JitError } from '../../errors.js'
import type { Ctx } from '../context.js'
import { loadConfig } from '../resolve.js'
import { isChunkPartKey } from '../../store/chunked-store.js'
import { openStores } from '../stores.js'

/** `jit logout`: delete cached credentials locally. */
export function logoutCommand(ctx: Ctx): Command {
  return new Command('logout')
    .description('delete cached credentials of a profile (or all of them) from this machine')
    .option('-p, --profile <name>', 'profile to log out (env JIT_PROFILE)')
    .option('--all', 'every profile')
    .option('--no-revoke', 'only delete locally; do not ask the provider to revoke')
    .option('--json', 'print what was removed and revoked as JSON on stdout')
    .addHelpText('after', '\nExamples:\n  $ jit logout -p prod\n  $ jit logout --all')
    .action(async (flags: { profile?: string; all?: boolean; json?: boolean; revoke: boolean }) => {
      const { deps, style } = ctx
      const { dir, doc } = loadConfig(deps, ctx.warn)
      const names = Object.keys(doc.profiles)
      const profile = flags.profile ?? deps.env.JIT_PROFILE ?? doc.defaultProfile ?? (names.length === 1 ? names[0] : undefined)
      if (!flags.all && profile === undefined) {
        throw new JitError(ErrorCode.USAGE, 'name a profile or use --all', { hint: 'run: jit logout --profile NAME' })
      }
      const stores = openStores(deps, dir, 'keychain', ctx.warn, { interactive: false })
      const { removeExpired } = await import('../../core/credential-cache.js')
      const gone = await removeExpired(stores, deps.clock.now()).catch(() => [])
      if (gone.length) (await import('../audit-events.js')).expiredEvents(ctx, gone)
      const useKeychainList = deps.env.DBUS_SESSION_BUS_ADDRESS !== undefined || deps.platform !== 'linux'
      const result = await logout(
        {
          ...stores,
          ...(useKeychainList ? { listKeychainKeys: listing(ctx) } : {}),
          ...(flags.revoke ? { revoke: (await import('../revoke.js')).revoker(ctx, doc) } : {}),
        },
        flags.all ? { all: true } : { profile: profile as string },
      )
      const { revokedEvent } = await import('../audit-events.js')
      for (const meta of result.removed) {
        const report = result.revocations.find((r) => r.profile === meta.profile && r.fingerprint === meta.fingerprint)
        revokedEvent(ctx, meta, report ?? { profile: meta.profile, access: flags.revoke ? 'failed' : 'skipped', reason: flags.revoke ? 'not readable' : 'deleted locally only (--no-revoke)' })
      }
      if (flags.json) {
        deps.io.out.write(
          `${JSON.stringify({
            removed: result.removed.map((m) => ({ profile: m.profile, scope: m.scopes.join(' ') })),
            revocations: result.revocations,
            orphans: result.orphans,
          })}\n`,
        )
        return
      }
      for (const r of result.revocations) {
        const parts = [`access token ${r.access}`, ...(r.refresh ? [`refresh token ${r.refresh}`] : [])]
        deps.io.err.write(`${r.profile}: ${parts.join(', ')}${r.reason ? ` (${r.reason})` : ''}\n`)
        if (r.note) deps.io.err.write(`${style.yellow('note:')} ${r.note}\n`)
      }
      const count = result.removed.length + result.orphans
      deps.io.err.write(
        count === 0
          ? `nothing to remove${flags.all ? '' : ` for profile "${profile}"`}\n`
          : `${style.green('✓')} removed ${count} credential${count === 1 ? '' : 's'}${flags.all ? '' : ` of profile "${profile}"`} from this machine\n`,
      )
    })
}

function listing(ctx: Ctx): () => Promise<string[]> {
  return async () => {
    try {
      return (await ctx.deps.listKeychainKeys()).filter((k) => !isChunkPartKey(k) && k.includes('/'))
    } catch {
      // Listing only finds leftovers; a keychain that cannot list must not stop a logout.
      return []
    }
  }
}
