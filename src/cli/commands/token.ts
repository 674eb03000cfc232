import { Command, Option } from 'commander'
import { parseDuration } from '../../core/duration.js'
import type { Ctx } from '../context.js'
import { collect, loadConfig, resolveRequest, shellQuote, type RequestFlags } from '../resolve.js'

interface TokenFlags extends RequestFlags {
  minTtl?: string
  format: 'token' | 'json' | 'env' | 'header' | 'exec-credential'
  login?: boolean
  input: boolean
  subjectTokenFile?: string
  subjectTokenEnv?: string
  authorizationDetails?: string
  acrValues?: string
}

/** `jit token`: print a usable access token for scripts; never prompts unless `--login` on a terminal. */
export function tokenCommand(ctx: Ctx): Command {
  return new Command('token')
    .description('print a usable access token on stdout (exit 4 when there is none and none can be had here)')
    .option('-p, --profile <name>', 'profile to use (env JIT_PROFILE)')
    .option('-s, --scope <scope>', 'scope the token must carry; repeat or space-separate (default: the profile\'s)', collect)
    .option('--resource <uri>', 'resource indicator the token was asked for; repeatable', collect)
    .option('--audience <aud>', 'audience the token was asked for')
    .option('--authorization-details <json>', 'RFC 9396 authorization details the token was asked with: JSON, or @file')
    .option('--acr-values <values>', 'authentication context the token was asked with')
    .option('--ttl <duration>', 'TTL of a new token, when one is fetched (machine flows, --login)')
    .option('--min-ttl <duration>', 'the token must stay valid at least this long, e.g. 5m', '0s')
    .addOption(new Option('--format <format>', 'token (just the token), json, env (export lines), header, or exec-credential (kubectl)').choices(['token', 'json', 'env', 'header', 'exec-credential']).default('token'))
    .option('--login', 'on a terminal, log in when there is no usable credential')
    .option('--no-input', 'never prompt or open a browser (implied by CI=true or no terminal)')
    .addOption(new Option('--store <store>', 'where the credential is kept (env JIT_STORE)').choices(['keychain', 'file', 'none']))
    .option('--subject-token-file <path>', 'token-exchange: read the CI OIDC token from this file')
    .option('--subject-token-env <name>', 'token-exchange: read the CI OIDC token from this variable')
    .addHelpText(
      'after',
      `
Machine profiles (flow client-credentials or token-exchange) fetch a token when none is cached; parallel calls
that share a store (keychain, or --store file) make one request. Other profiles never log in from here unless
--login is given on a terminal; a refreshable credential (allow-refresh) is refreshed inside its TTL.

Exit codes: 0 token printed, 1 provider or network failure, 2 usage error, 3 keychain unavailable,
4 no usable credential and no way to get one here (log in again), 5 refused by the provider.

Examples:
  $ TOKEN=$(jit token --profile prod)
  $ jit token -p prod --scope db:read --min-ttl 10m
  $ eval "$(jit token -p deploy --format env)"      # export JIT_ACCESS_TOKEN=...
  $ jit token -p api --format header | curl -H @- https://api.example.com/me
  kubeconfig: users[].user.exec = { apiVersion: client.authentication.k8s.io/v1, command: jit,
              args: [token, --profile, k8s, --format, exec-credential], interactiveMode: Never }`,
    )
    .action(async (flags: TokenFlags) => {
      const { deps } = ctx
      const minTtlMs = flags.minTtl === '0s' ? 0 : parseDuration(flags.minTtl ?? '0s', '--min-ttl')
      const config = loadConfig(deps, ctx.warn)
      const resolved = resolveRequest(deps, flags, config, flags.ttl !== undefined || flags.login ? 'login' : 'lookup')
      const { acquireCredential, nonInteractive } = await import('../acquire.js')
      const { refusalEvents, usedEvent } = await import('../audit-events.js')
      const credential = await acquireCredential(ctx, resolved, {
        minTtlMs,
        allowLogin: flags.login === true && !nonInteractive(ctx, flags.input === false),
        loginFlags: { ...flags, browser: true },
        subject: flags,
      }).catch((err: unknown) => {
        refusalEvents(ctx, resolved.request, err, 'token')
        throw err
      })
      usedEvent(ctx, credential, 'token')
      const { meta } = credential
      const expiresAt = new Date(meta.deadline).toISOString()
      switch (flags.format) {
        case 'json':
          deps.io.out.write(
            `${JSON.stringify({
              access_token: credential.accessToken,
              token_type: credential.tokenType,
              expires_at: expiresAt,
              expires_in: Math.max(0, Math.floor((meta.deadline - deps.clock.now()) / 1000)),
              profile: meta.profile,
              scope: meta.scopes.join(' '),
              resource: meta.resources,
              audience: meta.audience ?? null,
            })}\n`,
          )
          break
        case 'env':
          deps.io.out.write(`export JIT_ACCESS_TOKEN=${shellQuote(credential.accessToken, true)}\nexport JIT_TOKEN_EXPIRES_AT=${shellQuote(expiresAt, true)}\n`)
          break
        case 'header':
          deps.io.out.write(`Authorization: Bearer ${credential.accessToken}\n`)
          break
        case 'exec-credential':
          // kubectl's exec credential plugin contract (client.authentication.k8s.io/v1): kubectl caches it until then.
          deps.io.out.write(
            `${JSON.stringify({
              apiVersion: 'client.authentication.k8s.io/v1',
              kind: 'ExecCredential',
              status: { token: credential.accessToken, expirationTimestamp: expiresAt.replace(/\.\d{3}Z$/, 'Z') },
            })}\n`,
          )
          break
        default:
          deps.io.out.write(`${credential.accessToken}\n`)
      }
    })
}
