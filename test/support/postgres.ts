import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { accessSync, appendFileSync, chownSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commandsOnPath, findOnPath, type ComponentCheck } from './components.js'

/** A throwaway PostgreSQL cluster on 127.0.0.1 whose roles `jit_read` and `jit_write` log in through LDAP. */
export interface TestPostgres {
  /** The TCP port on 127.0.0.1. */
  readonly port: number
  readonly host: '127.0.0.1'
  /** The data folder (owned by `postgres` when the tests run as root). */
  readonly dataDir: string
  /** The server log (`pg_ctl -l`); authentication failures and `LDAP diagnostics:` lines land here. */
  readonly logFile: string
  /**
   * Runs the real `psql` against `-h 127.0.0.1 -p PORT` (database `postgres`, no password prompt, no `.psqlrc`,
   * `PGCONNECT_TIMEOUT=5`) with `env` on top of a copy of `process.env` stripped of `PG*`; pass the token as
   * `PGPASSWORD`, never in `args`.
   */
  psql(args: string[], env?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }>
  /**
   * `PGHOST`, `PGPORT`, `PGDATABASE`, `PGCONNECT_TIMEOUT` and `PGPASSFILE=/dev/null`: merge into the environment of a
   * command that runs `psql` itself (`jit exec -- psql ...`) so it reaches this server without `-h`/`-p`.
   */
  readonly env: Record<string, string>
  /** The server log so far. */
  log(): string
  /** Stops the server (immediate mode) and removes the temp folder. */
  stop(): Promise<void>
}

/** Roles, a table and grants the cluster starts with; `items` is in database `postgres`, schema `public`. */
const SETUP_SQL = `
CREATE ROLE jit_read LOGIN;
CREATE ROLE jit_write LOGIN;
CREATE TABLE items (id int, name text);
INSERT INTO items VALUES (1, 'first');
GRANT SELECT ON items TO jit_read;
GRANT SELECT, INSERT ON items TO jit_write;
`

const CONNECTION_ENV = { PGDATABASE: 'postgres', PGPASSFILE: '/dev/null', PGCONNECT_TIMEOUT: '5' } as const
const DEBIAN_BINDIR = '/usr/lib/postgresql/15/bin'
const SERVER_TOOLS = ['initdb', 'pg_ctl', 'postgres'] as const
const PSQL_TIMEOUT_MS = 20_000
const PORT_ATTEMPTS = 3

/**
 * Whether {@link startPostgres} can run here: the PostgreSQL server tools (Debian `postgresql-15`, or wherever
 * `pg_config --bindir` points), `psql` on `PATH` and, as root, `runuser` (PostgreSQL refuses to run as root).
 */
export function postgresAvailability(): ComponentCheck {
  const hint = '(apt-get install postgresql-15 postgresql-client-15, with create_main_cluster = false)'
  if (process.platform === 'win32') return { ok: false, reason: 'the PostgreSQL harness runs on Linux and macOS' }
  const bindir = serverBindir()
  if (bindir === undefined) return { ok: false, reason: `no initdb in ${DEBIAN_BINDIR} nor in pg_config --bindir ${hint}` }
  const missing = SERVER_TOOLS.filter((tool) => !executable(join(bindir, tool)))
  if (missing.length > 0) return { ok: false, reason: `missing in ${bindir}: ${missing.join(', ')} ${hint}` }
  const clients = commandsOnPath(isRoot() ? ['psql', 'runuser'] : ['psql'])
  if (!clients.ok) return { ok: false, reason: `${clients.reason} ${hint}` }
  if (isRoot() && !postgresUser()) return { ok: false, reason: `running as root and there is no postgres user ${hint}` }
  return { ok: true }
}

/**
 * Starts a throwaway cluster: `initdb` into a temp folder, a free loopback port, the Unix socket in the temp folder,
 * `fsync = off`. `pg_hba.conf` lets `postgres` in through the socket (trust, for setup), sends `jit_read` and
 * `jit_write` over TCP from 127.0.0.1 to the LDAP server on `ldapPort` in simple-bind mode (`uid=<role>,ou=jit`,
 * password = whatever the client sent) and rejects everything else. As root, the server tools run as `postgres`
 * through `runuser`. The server is stopped when this process exits, if {@link TestPostgres.stop} was not called.
 */
export async function startPostgres(opts: { ldapPort: number }): Promise<TestPostgres> {
  if (!Number.isInteger(opts.ldapPort) || opts.ldapPort <= 0 || opts.ldapPort > 65535) throw new Error(`bad LDAP port ${opts.ldapPort}`)
  const available = postgresAvailability()
  if (!available.ok) throw new Error(`cannot start PostgreSQL: ${available.reason}`)
  const bindir = serverBindir()!
  const asPostgres = isRoot() ? postgresUser() : undefined

  // As root the folders must be reachable by postgres: /tmp is, a root-only TMPDIR may not be.
  const root = mkdtempSync(join(asPostgres ? '/tmp' : tmpdir(), 'jit-pg-'))
  const dataDir = join(root, 'data')
  const logFile = join(root, 'postgres.log')
  if (asPostgres) chownSync(root, asPostgres.uid, asPostgres.gid)

  // The server gets a clean environment: no PG* of the developer's, no ldap.conf or ~/.ldaprc (LDAPNOINIT).
  const serverEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LDAPNOINIT: '1' }
  const tool = (name: string, args: string[]): { command: string; args: string[] } =>
    asPostgres ? { command: 'runuser', args: ['-u', 'postgres', '--', join(bindir, name), ...args] } : { command: join(bindir, name), args }
  const runTool = async (name: string, args: string[], timeout = 60_000): Promise<string> => {
    const { command, args: argv } = tool(name, args)
    const result = await run(command, argv, { cwd: root, env: serverEnv, timeout })
    if (result.code !== 0) throw new Error(`${name} ${args.join(' ')} failed (${result.code}): ${result.stderr || result.stdout}`)
    return result.stdout
  }

  let started = false
  const stopSync = (): void => {
    if (started) {
      const { command, args } = tool('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '10'])
      const result = spawnSync(command, args, { cwd: root, env: serverEnv, stdio: 'ignore', timeout: 15_000 })
      if (result.status !== 0) killPostmaster(dataDir)
      started = false
    }
    rmSync(root, { recursive: true, force: true })
  }
  process.once('exit', stopSync)

  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    process.off('exit', stopSync)
    if (started) {
      try {
        await runTool('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '10'], 15_000)
      } catch {
        killPostmaster(dataDir)
      }
      started = false
    }
    rmSync(root, { recursive: true, force: true })
  }

  try {
    await runTool('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-locale', '-E', 'UTF8', '--no-instructions'])
    appendFileSync(join(dataDir, 'postgresql.conf'), "\ninclude 'jit-test.conf'\n")
    writeFileSync(
      join(dataDir, 'pg_hba.conf'),
      [
        'local all postgres trust',
        `host all jit_read,jit_write 127.0.0.1/32 ldap ldapserver=127.0.0.1 ldapport=${opts.ldapPort} ldapprefix="uid=" ldapsuffix=",ou=jit"`,
        'local all all reject',
        'host all all 0.0.0.0/0 reject',
        'host all all ::/0 reject',
        '',
      ].join('\n'),
    )

    let port = 0
    // A port found free may be taken before the postmaster binds it: try another one.
    for (let attempt = 1; ; attempt++) {
      port = await freePort()
      writeFileSync(join(dataDir, 'jit-test.conf'), serverConfig(port, root))
      // Set first: when pg_ctl gives up waiting, the postmaster may still be coming up and must be stopped too.
      started = true
      try {
        await runTool('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '30'])
        break
      } catch (err) {
        const log = readLog(logFile)
        if (attempt >= PORT_ATTEMPTS || !/could not bind|Address already in use/.test(log)) {
          throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- server log ---\n${log}`, { cause: err })
        }
      }
    }

    const setup = await run('psql', ['-X', '-q', '-w', '-v', 'ON_ERROR_STOP=1', '-h', root, '-p', String(port), '-U', 'postgres', '-d', 'postgres'], {
      env: clientEnv({}),
      input: SETUP_SQL,
      timeout: PSQL_TIMEOUT_MS,
    })
    if (setup.code !== 0) throw new Error(`setting up the test database failed: ${setup.stderr}`)

    return {
      port,
      host: '127.0.0.1',
      dataDir,
      logFile,
      env: { PGHOST: '127.0.0.1', PGPORT: String(port), ...CONNECTION_ENV },
      psql: (args, env = {}) =>
        run('psql', ['-X', '-w', '-h', '127.0.0.1', '-p', String(port), ...args], { env: clientEnv(env), timeout: PSQL_TIMEOUT_MS }),
      log: () => readLog(logFile),
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

function serverConfig(port: number, socketDir: string): string {
  return `listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${socketDir}'
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = off
max_connections = 20
shared_buffers = 16MB
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d '
log_connections = on
`
}

/** `process.env` without the PG* variables that would point psql elsewhere, with the test's own on top. */
function clientEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('PG') && key !== 'PSQLRC') env[key] = value
  }
  return { ...env, ...CONNECTION_ENV, ...extra }
}

function run(
  command: string,
  args: string[],
  opts: { cwd?: string; env: Record<string, string>; timeout: number; input?: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { cwd: opts.cwd ?? '/', env: opts.env, timeout: opts.timeout, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      const why = err !== null && typeof err.code !== 'number' ? `${err.message}\n` : ''
      resolve({ code, stdout, stderr: why + stderr })
    })
    child.stdin?.end(opts.input ?? '')
  })
}

async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return address.port
}

/** SIGQUIT is PostgreSQL's immediate shutdown; the fallback when `pg_ctl stop` fails. */
function killPostmaster(dataDir: string): void {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
    if (!Number.isInteger(pid) || pid <= 0) return
    // A pid file left by a crash may name a process that is no longer the postmaster.
    if (process.platform === 'linux' && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres')) return
    process.kill(pid, 'SIGQUIT')
  } catch {
    // no pid file, or already gone
  }
}

function readLog(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8')
  } catch {
    return ''
  }
}

function serverBindir(): string | undefined {
  if (executable(join(DEBIAN_BINDIR, 'initdb'))) return DEBIAN_BINDIR
  const pgConfig = findOnPath('pg_config')
  if (pgConfig === undefined) return undefined
  try {
    const bindir = execFileSync(pgConfig, ['--bindir'], { encoding: 'utf8', timeout: 5000 }).trim()
    return existsSync(join(bindir, 'initdb')) ? bindir : undefined
  } catch {
    return undefined
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0
}

function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', timeout: 5000 }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', timeout: 5000 }).trim())
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined
  } catch {
    return undefined
  }
}
