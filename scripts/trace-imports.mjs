/**
 * Preload for tests and benchmarks: `node --import ./scripts/trace-imports.mjs bin/jit.js token` appends the URL of
 * every module the process resolves to the file named by JIT_TRACE_IMPORTS_FILE, so a test can prove that a cache hit
 * never loads openid-client.
 */
import { register } from 'node:module'

if (process.env.JIT_TRACE_IMPORTS_FILE) {
  register('./trace-imports-hooks.mjs', import.meta.url, { data: { file: process.env.JIT_TRACE_IMPORTS_FILE } })
}
