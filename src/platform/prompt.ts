import type { IO } from './io.js'

/**
 * Reads one line from a terminal without echoing it (for the file store's passphrase). Returns `undefined` when
 * stdin or stderr is not a terminal: jit never blocks a script waiting for input.
 */
export async function readSecretFromTTY(io: IO, prompt: string): Promise<string | undefined> {
  const input = io.in as NodeJS.ReadStream
  if (!io.isInTTY || !io.isErrTTY || typeof input.setRawMode !== 'function') return undefined
  io.err.write(prompt)
  input.setRawMode(true)
  input.resume()
  return new Promise((resolve, reject) => {
    let value = ''
    const done = (result: string | undefined, err?: Error): void => {
      input.setRawMode(false)
      input.pause()
      input.off('data', onData)
      io.err.write('\n')
      if (err) reject(err)
      else resolve(result)
    }
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(value)
        if (ch === '\u0003') return done(undefined, Object.assign(new Error('interrupted'), { name: 'AbortError' }))
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
        else if (ch >= ' ') value += ch
      }
    }
    input.on('data', onData)
  })
}
