import { PassThrough, Writable } from 'node:stream'
import type { IO } from '../../src/platform/io.js'

/** Captured streams: what jit wrote on stdout and stderr, as text. */
export interface TestIO extends IO {
  stdout(): string
  stderr(): string
}

class Sink extends Writable {
  chunks: string[] = []
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk.toString())
    cb()
  }
}

/** An IO whose output is captured; not a terminal unless asked. */
export function testIO(opts: { tty?: boolean } = {}): TestIO {
  const out = new Sink()
  const err = new Sink()
  return {
    in: new PassThrough(),
    out,
    err,
    isInTTY: opts.tty ?? false,
    isOutTTY: opts.tty ?? false,
    isErrTTY: opts.tty ?? false,
    stdout: () => out.chunks.join(''),
    stderr: () => err.chunks.join(''),
  }
}
