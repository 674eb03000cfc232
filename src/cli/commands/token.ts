import { Command, Option } from 'commander'
import { parseDuration } from '../../core/duration.js'
import { getToken } from '../../core/get-token.js'
import type { Ctx } from '../context.js'
import { collect, loadConfig, resolveRequest, type RequestFlags } from '../resolve.js'
import { openStores } from '../stores.js'

interface TokenFlags extends RequestFlags {
  minTtl?: string
  format: 'token' | 'json'
}

/** `jit token`: print a usable access token for scripts; never prompts. */
export function tokenCommand(ctx: Ctx): Command {
  return new Command('token')
    .description('print a usable access token on stdout (exit 4 when there is none)')
    .option('-p, --profile <name>', 'profile to use (env JIT_PROFILE)')
    .option('-s, --scope <scope>', 'scope the token must carry; repeat or space-separate (default: the profile\'s)', collect)
    .option('--resource <uri>', 'resource indicator the token was asked for; repeatable', collect)
    .option('--audience <aud>', 'audience the token was asked for')
    .option('--min-ttl <duration>', 'the token must stay valid at least this long, e.g. 5m', '0s')
    .addOption(new Option('--format <format>', 'output format').choices(['token', 'json']).default('token'))
    .addHelpText(
      'after',
      `
Exit codes: 0 token printed, 2 usage error, 3 keychain unavailable, 4 no usable credential (log in again).

Examples:
  $ TOKEN=$(jit token --profile prod)
  $ jit token -p prod --scope db:read --min-ttl 10m
  $ jit token -p prod --format json | jq -r .expires_at`,
    )
    .action(async (flags: TokenFlags) => {
      const { deps } = ctx
      const minTtlMs = flags.minTtl === '0s' ? 0 : parseDuration(flags.minTtl ?? '0s', '--min-ttl')
      const config = loadConfig(deps, ctx.warn)
      const resolved = resolveRequest(deps, flags, config, 'lookup')
      const stores = openStores(deps, resolved.dir, resolved.request.store, ctx.warn, { interactive: false })
      const { credential } = await getToken(
        { ...stores, clock: deps.clock },
        { request: resolved.request, minTtlMs, loginCommand: resolved.loginCommand },
      )
      if (flags.format === 'json') {
        const { meta } = credential
        deps.io.out.write(
          `${JSON.stringify({
            access_token: credential.accessToken,
            token_type: credential.tokenType,
            expires_at: new Date(meta.deadline).toISOString(),
            expires_in: Math.max(0, Math.floor((meta.deadline - deps.clock.now()) / 1000)),
            profile: meta.profile,
            scope: meta.scopes.join(' '),
            resource: meta.resources,
            audience: meta.audience ?? null,
          })}\n`,
        )
      } else {
        deps.io.out.write(`${credential.accessToken}\n`)
      }
    })
}
