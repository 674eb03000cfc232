import { Command, Option } from 'commander'
import { formatDuration } from '../../core/duration.js'
import { login, type LoginResult } from '../../core/login.js'
import { ErrorCode, JitError } from '../../errors.js'
import { parseDuration } from '../../core/duration.js'
import { canOpenBrowser, chooseFlow, type FlowChoice } from '../../platform/browser.js'
import type { Ctx } from '../context.js'
import { humanLoginReporter, jsonLoginReporter } from '../login-reporter.js'
import { writeEvent } from '../output.js'
import { collect, loadConfig, resolveRequest, type RequestFlags } from '../resolve.js'
import { openStores } from '../stores.js'

/** Flags of `jit login`. */
export interface LoginFlags extends RequestFlags {
  json?: boolean
  browser: boolean
  qr?: boolean
  flow?: string
  insecureLoopback?: boolean
  redirectPort?: string
  redirectHost?: '127.0.0.1' | 'localhost'
  timeout?: string
  reason?: string
}

/** `jit login`: get a credential with the device flow and cache it. */
export function loginCommand(ctx: Ctx): Command {
  return new Command('login')
    .description('get a short-lived credential from the provider and cache it in the keychain')
    .option('-p, --profile <name>', 'profile to use (env JIT_PROFILE)')
    .option('-s, --scope <scope>', 'scope to ask for; repeat or space-separate (default: the profile\'s)', collect)
    .option('--ttl <duration>', 'how long the credential may live: 90s, 15m, 2h, 1d (default: profile ttl, else 1h)')
    .option('--resource <uri>', 'resource indicator (RFC 8707); repeatable', collect)
    .option('--audience <aud>', 'audience to ask for')
    .option('--authorization-details <json>', 'RFC 9396 authorization details: JSON, or @file')
    .option('--acr-values <values>', 'ask for an authentication context (e.g. MFA); see the profile\'s require-acr')
    .option('--max-age <duration>', 'the sign-in must be at most this old (max_age; checked against auth_time)')
    .option('--reason <text>', 'why you need access (a ticket, an incident); recorded in the audit trail')
    .addOption(new Option('--flow <flow>', 'device (a code to enter anywhere), pkce (browser on this machine), or auto').choices(['device', 'pkce', 'auto']))
    .option('--no-browser', 'do not open a browser; print the URL (and code) only')
    .option('--redirect-port <port>', 'browser flow: fixed loopback port for providers that register exact redirect URIs')
    .addOption(new Option('--redirect-host <host>', 'browser flow: host name in the redirect URI (default 127.0.0.1)').choices(['127.0.0.1', 'localhost']))
    .option('--timeout <duration>', 'give up after this long (default 5m for the browser flow; the device code\'s own expiry otherwise)')
    .option('--qr', 'print a QR code of the verification URL (default on a terminal)')
    .option('--no-qr', 'never print a QR code')
    .addOption(new Option('--store <store>', 'where to keep the secret (env JIT_STORE)').choices(['keychain', 'file', 'none']))
    .option('--insecure-loopback', 'allow plain http to a loopback issuer (local providers only)')
    .option('--json', 'write one JSON event per step on stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ jit login --profile prod --scope db:read --ttl 2h
  $ jit login -p prod --no-browser          # over SSH: prints the URL, the code and a QR code
  $ jit login -p prod --flow pkce --redirect-port 8400   # provider registered http://127.0.0.1:8400/callback
  $ jit login -p prod --json 2>events.jsonl # machine-readable steps on stderr`,
    )
    .action(async (flags: LoginFlags) => {
      await performLogin(ctx, flags)
    })
}

/**
 * Runs a login as `jit login` would, with its output; `jit exec` uses it when no usable credential is cached and a
 * person is there.
 */
export async function performLogin(ctx: Ctx, flags: LoginFlags): Promise<LoginResult> {
  const { deps, style } = ctx
  const config = loadConfig(deps, ctx.warn)
  const resolved = resolveRequest(deps, flags, config)
  const { request, profile } = resolved
  const asked = flags.flow ?? profile.flow ?? 'auto'
  if (asked !== 'device' && asked !== 'auto' && asked !== 'pkce') {
    throw new JitError(ErrorCode.USAGE, `profile "${resolved.profileName}" uses the ${asked} flow, which jit login does not run`, {
      hint: 'use --flow device or --flow pkce',
    })
  }
  const choice: FlowChoice =
    asked === 'auto' ? chooseFlow(deps.env, deps.platform) : { flow: asked, reason: flags.flow ? `--flow ${asked}` : `profile flow ${asked}` }
  const portText = flags.redirectPort ?? (profile.redirectPort !== undefined ? String(profile.redirectPort) : '0')
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new JitError(ErrorCode.USAGE, `invalid --redirect-port "${portText}": use 1-65535 (or 0 for any free port)`)
  }
  const timeoutMs = flags.timeout !== undefined ? parseDuration(flags.timeout, '--timeout') : choice.flow === 'pkce' ? 300_000 : undefined
  if (deps.env.CI === 'true' || (!deps.io.isInTTY && !deps.io.isErrTTY && !flags.json)) {
    // Nobody is there to approve a device code: say so now rather than wait ten minutes.
    throw new JitError(ErrorCode.INTERACTION_REQUIRED, 'jit login needs a person to approve it, and this session is not interactive', {
      hint: 'log in from a terminal first; jit token then works in scripts until the deadline',
    })
  }
  if (request.ttlMs <= request.leewayMs) {
    throw new JitError(ErrorCode.INVALID_TTL, `a TTL of ${formatDuration(request.ttlMs)} is not longer than the ${formatDuration(request.leewayMs)} safety margin, so jit token would never hand it out`, {
      hint: `ask for more, or lower the profile's leeway: jit config set ${resolved.profileName} leeway 5s`,
    })
  }
  const stores = openStores(deps, resolved.dir, request.store, ctx.warn, { interactive: true })
  // Every run cleans up: expired credentials go, found from the state file alone.
  const { removeExpired } = await import('../../core/credential-cache.js')
  const gone = await removeExpired(stores, deps.clock.now()).catch(() => [])
  if (gone.length) (await import('../audit-events.js')).expiredEvents(ctx, gone)
  const reporter = flags.json
    ? jsonLoginReporter(deps.io, resolved.profileName, choice.reason)
    : humanLoginReporter({
        io: deps.io,
        clock: deps.clock,
        style,
        qr: flags.qr ?? deps.io.isErrTTY,
        renderQr: async (text) => (await import('uqr')).renderUnicodeCompact(text, { border: 1 }),
      })

  const controller = new AbortController()
  const unsubscribe = deps.onInterrupt(() =>
    controller.abort(new JitError(ErrorCode.INTERRUPTED, 'login interrupted; nothing was stored')),
  )
  const interrupted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })
  })
  interrupted.catch(() => {})
  const clientSecret = profile.clientSecretEnv ? deps.env[profile.clientSecretEnv] : undefined
  let result: LoginResult
  const { credentialEvent, requestEvent } = await import('../audit-events.js')
  try {
    result = await Promise.race([
      login(
        { ...stores, clock: deps.clock, sleep: deps.sleep, oidc: deps.oidc, browser: deps.browser, loopback: deps.loopback },
        {
          request,
          flow: choice.flow,
          pkce: { port, host: flags.redirectHost ?? profile.redirectHost ?? '127.0.0.1' },
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          allowInsecureLoopback: flags.insecureLoopback === true || profile.insecureLoopback === true,
          ...(clientSecret ? { clientSecret } : {}),
          ...(profile.ttlParam ? { ttlParam: profile.ttlParam } : {}),
          openBrowser: flags.browser && canOpenBrowser(deps.env, deps.platform),
          signal: controller.signal,
          reporter,
        },
      ),
      interrupted,
    ])
  } catch (err) {
    requestEvent(ctx, 'login_failed', request, err, { flow: choice.flow, ...(flags.reason ? { note: flags.reason } : {}) })
    throw err
  } finally {
    unsubscribe()
    reporter.stopped()
  }
  credentialEvent(ctx, 'issued', result.credential.meta, flags.reason ? { note: flags.reason } : {})
  const { meta } = result.credential
  const scopes = meta.scopes.filter((s) => s !== 'openid')
  if (flags.json) {
    writeEvent(deps.io, {
      event: 'logged_in',
      profile: meta.profile,
      scope: meta.scopes.join(' '),
      resource: meta.resources,
      audience: meta.audience ?? null,
      deadline: new Date(meta.deadline).toISOString(),
      capped_by: meta.cappedBy,
      store: meta.store,
      stored: result.stored,
    })
  } else {
    const left = formatDuration(meta.deadline - deps.clock.now())
    deps.io.err.write(
      `${style.green('✓')} logged in to profile "${meta.profile}"${meta.subject ? ` as ${meta.subject}` : ''}: ` +
        `${scopes.length ? scopes.join(' ') : 'default scope'}, valid for ${left} (until ${new Date(meta.deadline).toISOString()}, set by ${meta.cappedBy})\n`,
    )
    if (!result.stored) deps.io.err.write(`${style.yellow('warning:')} --store none: the credential was not kept\n`)
    else deps.io.err.write(`${style.dim(`stored in the ${meta.store === 'keychain' ? 'OS keychain' : 'encrypted file store'}`)}\n`)
  }
  return result
}
