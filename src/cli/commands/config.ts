import { Command, Option } from 'commander'
import { readConfig, updateConfig } from '../../config/config-file.js'
import { FLOWS, PROFILE_FIELDS, STORES, checkProfileName, profileToFields, type Profile } from '../../config/profile.js'
import { parseDuration } from '../../core/duration.js'
import { ErrorCode, JitError } from '../../errors.js'
import type { Ctx } from '../context.js'
import { collect } from '../resolve.js'
import { configDir } from '../../config/config-file.js'

interface InitFlags {
  issuer: string
  clientId: string
  clientSecretEnv?: string
  scope?: string[]
  flow?: Profile['flow']
  ttl?: string
  maxTtl?: string
  resource?: string[]
  audience?: string
  ttlParam?: string
  store?: Profile['store']
  insecureLoopback?: boolean
  default?: boolean
  force?: boolean
  json?: boolean
}

/** `jit config`: manage profiles (never secrets). */
export function configCommand(ctx: Ctx): Command {
  const config = new Command('config').description('manage profiles: init, list, show, set, unset, delete, use')
  const dir = (): string => configDir(ctx.deps.env)
  const read = () => readConfig(dir(), ctx.warn)
  const write = (change: Parameters<typeof updateConfig>[2]) => updateConfig(dir(), ctx.deps.clock.now(), change, ctx.warn)

  config
    .command('init')
    .description('create a profile; checks the provider\'s discovery document first')
    .argument('<name>', 'profile name')
    .requiredOption('--issuer <url>', 'issuer URL, exactly as the provider publishes it')
    .requiredOption('--client-id <id>', 'OAuth client ID registered at the provider')
    .option('--client-secret-env <NAME>', 'name of the variable that holds the client secret (never the secret)')
    .option('-s, --scope <scope>', 'default scopes; repeat or space-separate', collect)
    .addOption(new Option('--flow <flow>', 'login flow').choices([...FLOWS]))
    .option('--ttl <duration>', 'default TTL of a login (default 1h)')
    .option('--max-ttl <duration>', 'largest TTL a login may ask for')
    .option('--resource <uri>', 'default resource indicator; repeatable', collect)
    .option('--audience <aud>', 'default audience')
    .option('--ttl-param <name>', 'token-request parameter that carries the TTL in seconds, if the provider honours one')
    .addOption(new Option('--store <store>', 'where secrets go').choices([...STORES]))
    .option('--insecure-loopback', 'allow plain http to a loopback issuer (local providers only)')
    .option('--default', 'make this the default profile')
    .option('--force', 'replace an existing profile')
    .option('--json', 'print the profile as JSON on stdout')
    .addHelpText(
      'after',
      `
Examples:
  $ jit config init prod --issuer https://login.example.com/realms/prod --client-id jit --scope db:read --max-ttl 8h
  $ jit config init local --issuer http://127.0.0.1:8080 --client-id jit-cli --insecure-loopback`,
    )
    .action(async (name: string, flags: InitFlags) => {
      checkProfileName(name)
      const existing = read().profiles[name]
      if (existing && !flags.force) {
        throw new JitError(ErrorCode.USAGE, `profile "${name}" already exists`, { hint: `use jit config set ${name} ... or --force` })
      }
      const profile: Profile = { issuer: flags.issuer, clientId: flags.clientId }
      const set = (field: string, values: string[] | undefined): void => {
        if (values === undefined) return
        const def = PROFILE_FIELDS[field]!
        ;(profile as unknown as Record<string, unknown>)[def.key] = def.parse(values)
      }
      set('client-secret-env', flags.clientSecretEnv === undefined ? undefined : [flags.clientSecretEnv])
      set('scope', flags.scope)
      set('flow', flags.flow === undefined ? undefined : [flags.flow])
      set('ttl', flags.ttl === undefined ? undefined : [flags.ttl])
      set('max-ttl', flags.maxTtl === undefined ? undefined : [flags.maxTtl])
      set('resource', flags.resource)
      set('audience', flags.audience === undefined ? undefined : [flags.audience])
      set('ttl-param', flags.ttlParam === undefined ? undefined : [flags.ttlParam])
      set('store', flags.store === undefined ? undefined : [flags.store])
      if (flags.insecureLoopback) profile.insecureLoopback = true
      checkTtls(profile)

      const oidc = await ctx.deps.oidc()
      const session = await oidc.discover({
        issuer: profile.issuer,
        clientId: profile.clientId,
        allowInsecureLoopback: profile.insecureLoopback === true,
      })
      const doc = await write((d) => {
        d.profiles[name] = profile
        if (flags.default || Object.keys(d.profiles).length === 1) d.defaultProfile = name
      })
      if (flags.json) {
        ctx.deps.io.out.write(`${JSON.stringify({ name, default: doc.defaultProfile === name, ...profileToFields(profile) })}\n`)
      }
      const flows = [session.info.authorizationEndpoint ? 'browser' : undefined, session.info.deviceAuthorizationEndpoint ? 'device' : undefined].filter(Boolean)
      const flowsNote = flows.length ? `flows: ${flows.join(', ')}` : 'no interactive flow at this provider'
      ctx.deps.io.err.write(`${ctx.style.green('✓')} profile "${name}" saved (issuer ${session.info.issuer}; ${flowsNote})\n`)
      const machine = profile.flow === 'client-credentials' || profile.flow === 'token-exchange'
      ctx.deps.io.err.write(`next: ${machine ? `jit token --profile ${name}` : `jit login --profile ${name}`}\n`)
    })

  config
    .command('list')
    .description('list profiles')
    .option('--json', 'print JSON on stdout')
    .action((flags: { json?: boolean }) => {
      const doc = read()
      const names = Object.keys(doc.profiles).sort()
      if (flags.json) {
        ctx.deps.io.out.write(
          `${JSON.stringify(names.map((n) => ({ name: n, default: doc.defaultProfile === n, ...profileToFields(doc.profiles[n]!) })))}\n`,
        )
        return
      }
      if (names.length === 0) {
        ctx.deps.io.err.write('no profiles yet\nrun: jit config init NAME --issuer URL --client-id ID\n')
        return
      }
      for (const n of names) ctx.deps.io.out.write(`${n}${doc.defaultProfile === n ? ' (default)' : ''}\t${doc.profiles[n]!.issuer}\n`)
    })

  config
    .command('show')
    .description('show one profile')
    .argument('[name]', 'profile name (default: the default profile)')
    .option('--json', 'print JSON on stdout')
    .action((name: string | undefined, flags: { json?: boolean }) => {
      const doc = read()
      const chosen = name ?? ctx.deps.env.JIT_PROFILE ?? doc.defaultProfile
      const profile = chosen ? doc.profiles[chosen] : undefined
      if (!chosen || !profile) {
        throw new JitError(ErrorCode.PROFILE_NOT_FOUND, chosen ? `profile "${chosen}" does not exist` : 'no profile named and no default', {
          hint: 'run: jit config list',
        })
      }
      const fields = profileToFields(profile)
      if (flags.json) {
        ctx.deps.io.out.write(`${JSON.stringify({ name: chosen, default: doc.defaultProfile === chosen, ...fields })}\n`)
        return
      }
      ctx.deps.io.out.write(`${chosen}${doc.defaultProfile === chosen ? ' (default)' : ''}\n`)
      for (const [k, v] of Object.entries(fields)) ctx.deps.io.out.write(`  ${k.padEnd(18)} ${Array.isArray(v) ? v.join(' ') : String(v)}\n`)
    })

  config
    .command('set')
    .description(`set a field of a profile: ${Object.keys(PROFILE_FIELDS).join(', ')}`)
    .argument('<name>', 'profile name')
    .argument('<field>', 'field name')
    .argument('<value...>', 'value(s)')
    .addHelpText('after', '\nExamples:\n  $ jit config set prod max-ttl 4h\n  $ jit config set prod scope db:read db:write')
    .action(async (name: string, field: string, values: string[]) => {
      const def = PROFILE_FIELDS[field]
      if (!def) throw new JitError(ErrorCode.USAGE, `unknown field "${field}"`, { hint: `fields: ${Object.keys(PROFILE_FIELDS).join(', ')}` })
      const doc = read()
      const profile = doc.profiles[name]
      if (!profile) throw new JitError(ErrorCode.PROFILE_NOT_FOUND, `profile "${name}" does not exist`, { hint: 'run: jit config list' })
      const next = { ...profile, [def.key]: def.parse(values) } as Profile
      checkTtls(next)
      await write((d) => {
        d.profiles[name] = next
      })
      ctx.deps.io.err.write(`${ctx.style.green('✓')} ${name}.${field} set\n`)
    })

  config
    .command('unset')
    .description('remove a field from a profile')
    .argument('<name>', 'profile name')
    .argument('<field>', 'field name')
    .action(async (name: string, field: string) => {
      const def = PROFILE_FIELDS[field]
      if (!def || def.key === 'issuer' || def.key === 'clientId') throw new JitError(ErrorCode.USAGE, `cannot unset "${field}"`)
      await write((d) => {
        const profile = d.profiles[name]
        if (!profile) throw new JitError(ErrorCode.PROFILE_NOT_FOUND, `profile "${name}" does not exist`)
        delete profile[def.key]
      })
      ctx.deps.io.err.write(`${ctx.style.green('✓')} ${name}.${field} removed\n`)
    })

  config
    .command('delete')
    .description('delete a profile (cached credentials stay until jit logout or their deadline)')
    .argument('<name>', 'profile name')
    .action(async (name: string) => {
      await write((d) => {
        if (!d.profiles[name]) throw new JitError(ErrorCode.PROFILE_NOT_FOUND, `profile "${name}" does not exist`)
        delete d.profiles[name]
        if (d.defaultProfile === name) delete d.defaultProfile
      })
      ctx.deps.io.err.write(`${ctx.style.green('✓')} profile "${name}" deleted\nrun: jit logout --profile ${name}   to remove its cached credentials\n`)
    })

  config
    .command('use')
    .description('make a profile the default')
    .argument('<name>', 'profile name')
    .action(async (name: string) => {
      await write((d) => {
        if (!d.profiles[name]) throw new JitError(ErrorCode.PROFILE_NOT_FOUND, `profile "${name}" does not exist`)
        d.defaultProfile = name
      })
      ctx.deps.io.err.write(`${ctx.style.green('✓')} "${name}" is the default profile\n`)
    })

  return config
}

function checkTtls(profile: Profile): void {
  if (profile.ttl && profile.maxTtl && parseDuration(profile.ttl, 'ttl') > parseDuration(profile.maxTtl, 'max-ttl')) {
    throw new JitError(ErrorCode.TTL_ABOVE_MAX, `ttl ${profile.ttl} is above max-ttl ${profile.maxTtl}`)
  }
}
