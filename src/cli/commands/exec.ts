import { Command, Option } from 'commander'
import { parseEnvMapping } from '../../core/child-env.js'
import { parseDuration } from '../../core/duration.js'
import { execWithToken } from '../../core/exec-with-token.js'
import type { RevocationReport } from '../../core/logout.js'
import type { Ctx } from '../context.js'
import { collect, loadConfig, resolveRequest, type RequestFlags } from '../resolve.js'

interface ExecFlags extends RequestFlags {
  minTtl: string
  env?: string[]
  onExpiry: 'warn' | 'kill'
  killGrace: string
  allowNested?: boolean
  login: boolean
  input: boolean
  subjectTokenFile?: string
  subjectTokenEnv?: string
  revokeOnExit?: boolean
  authorizationDetails?: string
  acrValues?: string
}

/** `jit exec -- CMD ARGS`: run a command with the credential in its environment. */
export function execCommand(ctx: Ctx): Command {
  return new Command('exec')
    .description('run a command with a usable credential in its environment (never its arguments)')
    .argument('<command>', 'the command to run')
    .argument('[args...]', 'its arguments')
    .option('-p, --profile <name>', 'profile to use (env JIT_PROFILE)')
    .option('-s, --scope <scope>', 'scope to ask for; repeat or space-separate (default: the profile\'s)', collect)
    .option('--ttl <duration>', 'TTL of a new login, when one is needed')
    .option('--resource <uri>', 'resource indicator; repeatable', collect)
    .option('--audience <aud>', 'audience')
    .option('--min-ttl <duration>', 'the credential must stay valid at least this long, e.g. 15m', '0s')
    .option('-e, --env <NAME=FIELD>', 'set a variable from the credential: access_token, id_token, authorization, expires_at, claim:<name>, ...; repeatable', collect)
    .addOption(new Option('--on-expiry <action>', 'at the deadline: warn (one line on stderr) or kill (SIGTERM, then SIGKILL)').choices(['warn', 'kill']).default('warn'))
    .option('--kill-grace <duration>', 'with --on-expiry kill: time between SIGTERM and SIGKILL', '10s')
    .addOption(new Option('--store <store>', 'where the credential is kept (env JIT_STORE)').choices(['keychain', 'file', 'none']))
    .option('--allow-nested', 'run even inside another jit exec for the same profile')
    .option('--revoke-on-exit', 'revoke the credential at the provider and delete it when the command ends')
    .option('--authorization-details <json>', 'RFC 9396 authorization details of the credential: JSON, or @file')
    .option('--acr-values <values>', 'authentication context the credential was asked with')
    .option('--no-login', 'never log in; exit 4 when no usable credential is cached')
    .option('--no-input', 'never prompt or open a browser (implied by CI=true or no terminal)')
    .option('--subject-token-file <path>', 'token-exchange: read the CI OIDC token from this file')
    .option('--subject-token-env <name>', 'token-exchange: read the CI OIDC token from this variable')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
The command gets JIT_ACCESS_TOKEN, JIT_TOKEN_EXPIRES_AT and JIT_PROFILE, plus the profile's exec-env and --env
mappings. It inherits stdin, stdout and stderr; jit exits with its status (or 128 + the signal that ended it).

Examples:
  $ jit exec -p prod --env PGPASSWORD=access_token --env PGUSER=claim:preferred_username -- psql -h db.prod -d app
  $ jit exec -p prod --min-ttl 30m --on-expiry kill -- ./long-migration.sh
  $ jit exec -p api --env AUTH=authorization -- sh -c 'printf "Authorization: %s\\n" "$AUTH" | curl -H @- https://api.example.com/me'`,
    )
    .action(async (command: string, args: string[], flags: ExecFlags) => {
      const { deps } = ctx
      const minTtlMs = flags.minTtl === '0s' ? 0 : parseDuration(flags.minTtl, '--min-ttl')
      const killGraceMs = parseDuration(flags.killGrace, '--kill-grace')
      const config = loadConfig(deps, ctx.warn)
      const resolved = resolveRequest(deps, flags, config)
      const mappings = [...(resolved.profile.execEnv ?? []), ...(flags.env ?? [])].map(parseEnvMapping)
      const { runChild } = await import('../../exec/run-child.js')
      const { acquireCredential, nonInteractive } = await import('../acquire.js')
      const { refusalEvents, revokedEvent, usedEvent } = await import('../audit-events.js')
      ctx.exitCode = await execWithToken(
        {
          clock: deps.clock,
          runChild: (spec) => runChild({ ...spec, interactive: deps.io.isInTTY }),
          notice: (m) => deps.io.err.write(`${ctx.style.yellow('jit:')} ${m}\n`),
          ...(flags.revokeOnExit
            ? {
                afterExit: async (credential) => {
                  const { revoker } = await import('../revoke.js')
                  const report: RevocationReport = await revoker(ctx, config.doc)(credential).catch((err: unknown) => ({
                    profile: credential.meta.profile,
                    access: 'failed' as const,
                    reason: err instanceof Error ? err.message : String(err),
                  }))
                  revokedEvent(ctx, credential.meta, report)
                  const { storesFor } = await import('../acquire.js')
                  const { deleteCredential } = await import('../../core/credential-cache.js')
                  // Deleted whether or not the provider could be reached, as logout does.
                  await deleteCredential(storesFor(ctx, resolved), credential.meta)
                  deps.io.err.write(
                    report.access === 'failed'
                      ? `jit: could not revoke the credential of profile "${credential.meta.profile}" (${report.reason ?? 'unknown'}); deleted it here\n`
                      : `jit: revoked the credential of profile "${credential.meta.profile}" (access token ${report.access}${report.refresh ? `, refresh token ${report.refresh}` : ''})\n`,
                  )
                  if (report.note) deps.io.err.write(`jit: note: ${report.note}\n`)
                },
              }
            : {}),
          used: (credential) => usedEvent(ctx, credential, 'exec', command),
          obtain: () =>
            acquireCredential(ctx, resolved, {
              minTtlMs,
              allowLogin: flags.login && !nonInteractive(ctx, flags.input === false),
              loginFlags: { ...flags, browser: true },
              subject: flags,
            }).catch((err: unknown) => {
              refusalEvents(ctx, resolved.request, err, 'exec')
              throw err
            }),
        },
        {
          request: resolved.request,
          command,
          args,
          mappings,
          onExpiry: flags.onExpiry,
          killGraceMs,
          allowNested: flags.allowNested === true,
          parentEnv: deps.env,
          withhold: ['JIT_STORE_KEY', ...(resolved.profile.clientSecretEnv ? [resolved.profile.clientSecretEnv] : [])],
        },
      )
    })
}
