import { homedir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode, JitError } from '../errors.js'
import type { Env } from '../platform/io.js'
import { ensurePrivateDir, quarantine, readJsonFile } from '../store/atomic-file.js'
import { checkProfileName, validateProfile, type Profile } from './profile.js'

/** The config document. */
export interface ConfigDoc {
  defaultProfile?: string
  profiles: Record<string, Profile>
}

/**
 * The folder for config, state and audit log: `JIT_CONFIG_DIR`, else the platform's config folder
 * (`$XDG_CONFIG_HOME/jit`, `~/Library/Preferences/jit`, `%APPDATA%\jit`).
 */
export function configDir(env: Env, platform: NodeJS.Platform = process.platform): string {
  if (env.JIT_CONFIG_DIR) return env.JIT_CONFIG_DIR
  const home = env.HOME ?? homedir()
  if (platform === 'darwin') return join(home, 'Library', 'Preferences', 'jit')
  if (platform === 'win32') return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'jit', 'Config')
  return join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'jit')
}

/**
 * Reads `config.json` directly (it is plain JSON): the hot path of `jit token` must not pay for conf's schema
 * machinery. A corrupt file is reported and read as empty; profiles that do not validate are skipped with a warning.
 */
export function readConfig(dir: string, warn: (message: string) => void): ConfigDoc {
  const path = join(dir, 'config.json')
  const read = readJsonFile(path)
  if (read.kind === 'missing') return { profiles: {} }
  if (read.kind === 'corrupt' || read.value === null || typeof read.value !== 'object') {
    warn(`the config file "${path}" is corrupt and is ignored (${read.kind === 'corrupt' ? read.reason : 'not an object'})`)
    return { profiles: {} }
  }
  const raw = read.value as { defaultProfile?: unknown; profiles?: unknown }
  const profiles: Record<string, Profile> = {}
  if (raw.profiles && typeof raw.profiles === 'object') {
    for (const [name, value] of Object.entries(raw.profiles as Record<string, unknown>)) {
      try {
        profiles[name] = validateProfile(name, value)
      } catch (err) {
        warn(`${(err as Error).message}; it is ignored`)
      }
    }
  }
  return { ...(typeof raw.defaultProfile === 'string' ? { defaultProfile: raw.defaultProfile } : {}), profiles }
}

/**
 * Changes the config through conf (atomic writes, mode 0600). A corrupt file is moved aside first, so a write never
 * destroys what a person might still recover.
 */
export async function updateConfig(
  dir: string,
  now: number,
  change: (doc: ConfigDoc) => void,
  warn: (message: string) => void,
): Promise<ConfigDoc> {
  ensurePrivateDir(dir)
  const path = join(dir, 'config.json')
  const read = readJsonFile(path)
  if (read.kind === 'corrupt') {
    const moved = quarantine(path, now)
    warn(`the corrupt config file was moved to "${moved ?? path}"`)
  }
  const { default: Conf } = await import('conf')
  const conf = new Conf<{ defaultProfile?: string; profiles: Record<string, Profile> }>({
    cwd: dir,
    configName: 'config',
    projectName: 'jit',
    projectSuffix: '',
    configFileMode: 0o600,
    defaults: { profiles: {} },
  })
  const doc = readConfig(dir, warn)
  change(doc)
  conf.set('profiles', doc.profiles)
  if (doc.defaultProfile === undefined) conf.delete('defaultProfile')
  else conf.set('defaultProfile', doc.defaultProfile)
  return doc
}

/** Where the profile name comes from, for error messages. */
export interface ProfileChoice {
  name: string
  profile: Profile
}

/**
 * Resolves the profile: `--profile`, then `JIT_PROFILE`, then the config's default, then the only profile there is.
 *
 * @throws JitError `JIT_PROFILE_NOT_FOUND` (exit 2) with a hint to create one.
 */
export function chooseProfile(doc: ConfigDoc, flag: string | undefined, env: Env): ProfileChoice {
  const names = Object.keys(doc.profiles)
  const name = flag ?? env.JIT_PROFILE ?? doc.defaultProfile ?? (names.length === 1 ? names[0] : undefined)
  if (name === undefined) {
    throw new JitError(
      ErrorCode.PROFILE_NOT_FOUND,
      names.length === 0 ? 'no profile is configured' : `several profiles exist (${names.join(', ')}); choose one`,
      {
        hint:
          names.length === 0
            ? 'run: jit config init NAME --issuer https://idp.example.com --client-id ID'
            : `run: jit <command> --profile ${names[0]}`,
      },
    )
  }
  checkProfileName(name)
  const profile = doc.profiles[name]
  if (!profile) {
    throw new JitError(ErrorCode.PROFILE_NOT_FOUND, `profile "${name}" does not exist`, {
      hint: names.length ? `known profiles: ${names.join(', ')}` : `run: jit config init ${name} --issuer URL --client-id ID`,
    })
  }
  return { name, profile }
}
