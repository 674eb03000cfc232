import { Command, CommanderError } from 'commander'
import type { Deps } from '../deps.js'
import { makeCtx, type Ctx } from './context.js'
import { ExitCode, exitCodeFor, printError } from './exit-codes.js'
import { VERSION } from '../version.js'

/** Each command module is imported only when it runs: `jit token` on a cache hit loads no login or config code. */
const COMMANDS: Record<string, (ctx: Ctx) => Promise<Command>> = {
  login: async (ctx) => (await import('./commands/login.js')).loginCommand(ctx),
  token: async (ctx) => (await import('./commands/token.js')).tokenCommand(ctx),
  status: async (ctx) => (await import('./commands/status.js')).statusCommand(ctx),
  logout: async (ctx) => (await import('./commands/logout.js')).logoutCommand(ctx),
  audit: async (ctx) => (await import('./commands/audit.js')).auditCommand(ctx),
  exec: async (ctx) => (await import('./commands/exec.js')).execCommand(ctx),
  config: async (ctx) => (await import('./commands/config.js')).configCommand(ctx),
}

/** The command named in argv, if any: the first argument that is not an option. */
function commandIn(argv: readonly string[]): string | undefined {
  const first = argv.slice(2).find((a) => !a.startsWith('-'))
  return first !== undefined && first in COMMANDS ? first : undefined
}

/**
 * Runs jit with `argv` (as in `process.argv`) against `deps` and returns the exit status. Never throws and never calls
 * `process.exit`: errors are printed once here.
 */
export async function runCli(argv: readonly string[], deps: Deps): Promise<number> {
  const ctx = makeCtx(deps)
  if (argv.includes('--debug')) ctx.debug = true
  const program = new Command('jit')
    .description('just-in-time credentials from your OpenID provider: short-lived, narrowly scoped, kept in the OS keychain')
    .version(VERSION, '-V, --version')
    .option('--debug', 'print error details (never tokens)')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  $ jit config init prod --issuer https://login.example.com --client-id jit --scope db:read
  $ jit login --profile prod --ttl 2h
  $ TOKEN=$(jit token --profile prod)
  $ jit status

Docs: https://github.com/jit-credentials/jit/tree/main/docs`,
    )
  program.enablePositionalOptions()
  const named = commandIn(argv)
  for (const name of named ? [named] : Object.keys(COMMANDS)) {
    const cmd = await COMMANDS[name]!(ctx)
    cmd.option('--debug', 'print error details (never tokens)')
    program.addCommand(cmd)
  }
  const configure = (cmd: Command): void => {
    cmd.exitOverride()
    cmd.configureOutput({
      writeOut: (s) => deps.io.out.write(s),
      writeErr: (s) => deps.io.err.write(s),
      outputError: (s, write) => write(s.startsWith('error:') ? `jit: ${s.slice('error: '.length)}` : s),
    })
    for (const sub of cmd.commands) configure(sub)
  }
  configure(program)

  try {
    await program.parseAsync([...argv], { from: 'node' })
    return ctx.exitCode ?? ExitCode.OK
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.OK
      if (err.code === 'commander.executeSubCommandAsync') return ExitCode.OK
      // commander already printed the message; usage errors are exit 2 (DESIGN.md §5).
      return ExitCode.USAGE
    }
    printError(deps.io, err, ctx.debug, (s) => ctx.style.red(s))
    return exitCodeFor(err)
  }
}
