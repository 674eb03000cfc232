import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { commandsOnPath, type ComponentCheck } from './components.js'

const run = promisify(execFile)

/** A Secret Service of its own: a private session bus with a gnome-keyring on it, all state in a temp folder. */
export interface PrivateKeyring {
  /**
   * Variables that point a client at this keyring: `DBUS_SESSION_BUS_ADDRESS`, plus `HOME` and the `XDG_*` folders,
   * all inside the temp folder. Merge over `process.env` for a child process.
   */
  readonly env: Record<string, string>
  /** The `XDG_DATA_HOME` of the daemon; the keyring files are in `keyrings/` below it. */
  readonly dataHome: string
  /** Kills both daemons and removes the temp folder. */
  stop(): Promise<void>
  /** The accounts (`attribute.username`) under `service` (default `jit`), as `secret-tool search --all` sees them. */
  listAccounts(service?: string): Promise<string[]>
  /** Locks the default collection, as a screen lock or a timeout would. */
  lock(): Promise<void>
  /** Freezes the keyring daemon (SIGSTOP): calls reach the bus and never get an answer. */
  suspend(): void
  /** Undoes {@link suspend}. */
  resume(): void
  /** Kills the keyring daemon; the bus stays and, having no service files, starts no other. */
  killDaemon(): Promise<void>
}

const REQUIRED = ['dbus-daemon', 'gnome-keyring-daemon', 'secret-tool', 'dbus-send'] as const
const PASSWORD = 'jit-test-keyring'
const READY_TIMEOUT_MS = 10_000

/** Whether {@link startPrivateKeyring} can run here (Linux, with `gnome-keyring`, `dbus` and `libsecret-tools`). */
export function keyringAvailability(): ComponentCheck {
  if (process.platform !== 'linux') return { ok: false, reason: `the Secret Service tests run on Linux, not ${process.platform}` }
  const found = commandsOnPath(REQUIRED)
  return found.ok
    ? found
    : { ok: false, reason: `${found.reason} (apt-get install gnome-keyring dbus libsecret-tools)` }
}

/**
 * Starts a private session bus and an unlocked gnome-keyring on it. Nothing points at the developer's own bus or
 * keyring: the daemons get an environment built from scratch (no `DISPLAY`, no inherited D-Bus address) with
 * `HOME`, `XDG_DATA_HOME` and `XDG_RUNTIME_DIR` in a throwaway folder, and the bus has no service files, so nothing
 * is started on demand. Both daemons are children of this process and are killed when it exits.
 */
export async function startPrivateKeyring(): Promise<PrivateKeyring> {
  const available = keyringAvailability()
  if (!available.ok) throw new Error(`cannot start a private keyring: ${available.reason}`)

  const root = mkdtempSync(join(tmpdir(), 'jit-keyring-'))
  const dirs = { run: join(root, 'run'), data: join(root, 'data'), home: join(root, 'home'), config: join(root, 'config'), cache: join(root, 'cache') }
  for (const dir of Object.values(dirs)) mkdirSync(dir, { mode: 0o700 })
  const configFile = join(root, 'bus.conf')
  writeFileSync(configFile, busConfig(dirs.run))

  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: dirs.home,
    XDG_RUNTIME_DIR: dirs.run,
    XDG_DATA_HOME: dirs.data,
    XDG_CONFIG_HOME: dirs.config,
    XDG_CACHE_HOME: dirs.cache,
  }

  const children: ChildProcess[] = []
  const killAll = (): void => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  const onExit = (): void => {
    killAll()
    rmSync(root, { recursive: true, force: true })
  }
  process.once('exit', onExit)

  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    process.off('exit', onExit)
    // Keyring first, so it does not log the bus going away; SIGCONT in case a test left it frozen.
    for (const child of [...children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue
      child.kill('SIGCONT')
      child.kill('SIGTERM')
      if (!(await exited(child, 2000))) {
        child.kill('SIGKILL')
        await exited(child, 2000)
      }
    }
    rmSync(root, { recursive: true, force: true })
  }

  try {
    // --nofork keeps the bus our child: a forked one is re-parented to pid 1, which in containers may never reap it.
    const bus = spawn('dbus-daemon', [`--config-file=${configFile}`, '--nofork', '--nopidfile', '--nosyslog', '--print-address=1'], {
      env: baseEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(bus)
    const address = await firstLine(bus, 'dbus-daemon')
    const env: Record<string, string> = { ...baseEnv, DBUS_SESSION_BUS_ADDRESS: address }

    const keyring = spawn(
      'gnome-keyring-daemon',
      ['--foreground', '--unlock', '--components=secrets', `--control-directory=${join(dirs.run, 'keyring')}`],
      { env, stdio: ['pipe', 'ignore', 'pipe'] },
    )
    children.push(keyring)
    const keyringLog = collect(keyring)
    keyring.stdin?.end(PASSWORD)
    await waitForUnlockedKeyring(env, keyring, keyringLog)

    const clientEnv: Record<string, string> = { ...env }
    delete clientEnv.PATH
    delete clientEnv.LANG
    return {
      env: clientEnv,
      dataHome: dirs.data,
      stop,
      listAccounts: async (service = 'jit') => {
        const { stdout, stderr } = await run('secret-tool', ['search', '--all', 'service', service], { env, timeout: 10_000 })
        // secret-tool prints label and secret on stdout but the attribute lines on stderr.
        const accounts = new Set<string>()
        for (const line of `${stdout}\n${stderr}`.split('\n')) {
          const match = /^attribute\.username = (.*)$/.exec(line)
          if (match?.[1] !== undefined) accounts.add(match[1])
        }
        return [...accounts].sort()
      },
      lock: async () => {
        // `secret-tool lock --collection=...` (libsecret 0.20) locks and then crashes, or hangs on a full path.
        const collection = await defaultCollection(env)
        await dbusSend(env, SECRETS, '/org/freedesktop/secrets', 'org.freedesktop.Secret.Service.Lock', `array:objpath:${collection}`)
        if (!(await collectionLocked(env, collection))) throw new Error('the private keyring did not lock')
      },
      suspend: () => {
        keyring.kill('SIGSTOP')
      },
      resume: () => {
        keyring.kill('SIGCONT')
      },
      killDaemon: async () => {
        keyring.kill('SIGCONT')
        keyring.kill('SIGTERM')
        if (!(await exited(keyring, 2000))) keyring.kill('SIGKILL')
        await exited(keyring, 2000)
      },
    }
  } catch (err) {
    await stop()
    throw err
  }
}

function busConfig(runDir: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=${xml(runDir)}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <!-- Every keychain entry holds a connection of its own: the stock limit of 256 per user is within reach. -->
  <limit name="max_completed_connections">100000</limit>
  <limit name="max_incomplete_connections">10000</limit>
  <limit name="max_connections_per_user">100000</limit>
  <limit name="max_names_per_connection">50000</limit>
  <limit name="max_match_rules_per_connection">50000</limit>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
`
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function collect(child: ChildProcess): () => string {
  let text = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    text = (text + chunk).slice(-4000)
  })
  return () => text.trim()
}

function firstLine(child: ChildProcess, name: string): Promise<string> {
  const log = collect(child)
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => fail(new Error(`${name} printed no address within ${READY_TIMEOUT_MS} ms: ${log()}`)), READY_TIMEOUT_MS)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      reject(err)
    }
    child.once('error', fail)
    child.once('exit', (code, signal) => fail(new Error(`${name} exited (${code ?? signal}): ${log()}`)))
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (chunk: string) => {
      out += chunk
      const newline = out.indexOf('\n')
      if (newline >= 0) {
        clearTimeout(timer)
        resolve(out.slice(0, newline).trim())
      }
    })
  })
}

async function waitForUnlockedKeyring(env: Record<string, string>, keyring: ChildProcess, log: () => string): Promise<void> {
  const started = performance.now()
  for (;;) {
    if (keyring.exitCode !== null || keyring.signalCode !== null) {
      throw new Error(`gnome-keyring-daemon exited (${keyring.exitCode ?? keyring.signalCode}): ${log()}`)
    }
    try {
      const owner = await dbusSend(env, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', `string:${SECRETS}`)
      if (/boolean true/.test(owner) && !(await collectionLocked(env, await defaultCollection(env)))) return
    } catch {
      // not up yet
    }
    if (performance.now() - started > READY_TIMEOUT_MS) {
      throw new Error(`gnome-keyring-daemon did not serve an unlocked keyring within ${READY_TIMEOUT_MS} ms: ${log()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function defaultCollection(env: Record<string, string>): Promise<string> {
  const reply = await dbusSend(env, SECRETS, '/org/freedesktop/secrets', 'org.freedesktop.Secret.Service.ReadAlias', 'string:default')
  const path = /object path "([^"]+)"/.exec(reply)?.[1]
  if (!path || path === '/') throw new Error(`no default collection: ${reply.trim()}`)
  return path
}

async function collectionLocked(env: Record<string, string>, collection: string): Promise<boolean> {
  const reply = await dbusSend(env, SECRETS, collection, 'org.freedesktop.DBus.Properties.Get', 'string:org.freedesktop.Secret.Collection', 'string:Locked')
  return /boolean true/.test(reply)
}

const SECRETS = 'org.freedesktop.secrets'

async function dbusSend(env: Record<string, string>, dest: string, path: string, method: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('dbus-send', ['--session', '--print-reply', `--dest=${dest}`, path, method, ...args], {
    env,
    timeout: 5000,
  })
  return stdout
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}
