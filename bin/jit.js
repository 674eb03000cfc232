#!/usr/bin/env node
const { main } = await import('../dist/main.js')
const code = await main(process.argv)
// After Ctrl-C, do not wait for in-flight requests to the provider to time out.
if (code === 130) process.exit(code)
process.exitCode = code
