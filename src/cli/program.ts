import { Command, CommanderError } from 'commander'
import type { Deps } from '../deps.js'
import { configCommand } from '../cli/commands/config.js'
import { loginCommand } from './commands/login.js'
import { logoutCommand } from './commands/logout.js'
import { statusCommand } from './commands/status.js'
import { tokenCommand } from './commands/token.js'
import { makeCtx } from './context.js'
import { ExitCode, exitCodeFor, printError } from './exit-codes.js'
import { VERSION } from '../version.js'

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
  for (const cmd of [loginCommand(ctx), tokenCommand(ctx), statusCommand(ctx), logoutCommand(ctx), configCommand(ctx)]) {
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
    return ExitCode.OK
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
