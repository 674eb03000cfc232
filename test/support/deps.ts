import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from '../../src/core/ports.js'
import { createDeps, type Deps } from '../../src/deps.js'
import { memoryStore } from '../../src/store/memory-store.js'
import type { SecretStore } from '../../src/store/secret-store.js'
import { fixedClock, type FixedClock } from './clock.js'
import { testIO, type TestIO } from './test-io.js'

/** Dependencies for in-process CLI runs: captured IO, a fixed clock, a memory "keychain", a temp config folder. */
export interface TestDeps extends Deps {
  io: TestIO
  clock: FixedClock
  dir: string
  keychainStore: SecretStore & { readonly entries: Map<string, string> }
  opened: URL[]
  cleanup(): void
}

/** Builds {@link TestDeps}; `env` is merged over a minimal environment with `JIT_CONFIG_DIR` set to a temp folder. */
export function testDeps(opts: { env?: Record<string, string | undefined>; tty?: boolean; keychain?: SecretStore; browser?: Browser } = {}): TestDeps {
  const dir = mkdtempSync(join(tmpdir(), 'jit-test-'))
  const io = testIO({ tty: opts.tty ?? false })
  const clock = fixedClock()
  const mem = memoryStore()
  const keychain: SecretStore = opts.keychain ?? { ...mem, kind: 'keychain', probe: async () => {}, get: mem.get, set: mem.set, delete: mem.delete }
  const opened: URL[] = []
  const browser: Browser = {
    open: async (url) => {
      opened.push(url)
      await opts.browser?.open(url)
    },
  }
  const env = { JIT_CONFIG_DIR: dir, PATH: process.env.PATH, ...opts.env }
  const base = createDeps({ io, env })
  return {
    ...base,
    io,
    clock,
    env,
    dir,
    keychain: () => keychain,
    listKeychainKeys: async () => [...mem.entries.keys()],
    browser: async () => browser,
    onInterrupt: () => () => {},
    keychainStore: mem,
    opened,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}
