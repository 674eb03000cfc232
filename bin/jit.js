#!/usr/bin/env node
const { main } = await import('../dist/main.js')
const code = await main(process.argv)
// After Ctrl-C, do not wait for in-flight requests to time out; after a keychain timeout, a native call that never
// returns would otherwise keep the process alive.
if (code === 130 || code === 3) process.exit(code)
process.exitCode = code
