import { runCli } from './cli/program.js'
import { createDeps } from './deps.js'

/** Entry point of `bin/jit.js`: runs the CLI with the real dependencies and returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  return runCli(argv, createDeps())
}
