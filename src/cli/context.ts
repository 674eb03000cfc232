import type { ChalkInstance } from 'chalk'
import type { Deps } from '../deps.js'
import { stderrStyle } from './output.js'

/** What every command gets: the deps, stderr styling and a warning printer. */
export interface Ctx {
  deps: Deps
  style: ChalkInstance
  warn: (message: string) => void
  /** Set by `--debug` or `JIT_DEBUG`. */
  debug: boolean
  /** A command's own exit status when it is not 0 on success (`jit exec` passes the child's). */
  exitCode?: number
}

/** Builds the per-invocation context. */
export function makeCtx(deps: Deps): Ctx {
  const style = stderrStyle(deps.io, deps.env)
  const seen = new Set<string>()
  return {
    deps,
    style,
    debug: deps.env.JIT_DEBUG !== undefined && deps.env.JIT_DEBUG !== '' && deps.env.JIT_DEBUG !== '0',
    warn: (message) => {
      // The same warning from two layers (config read twice, say) is printed once.
      if (seen.has(message)) return
      seen.add(message)
      deps.io.err.write(`${style.yellow('warning:')} ${message}\n`)
    },
  }
}
