import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { Browser } from '../core/ports.js'
import type { Env } from './io.js'

/**
 * Opens http(s) URLs for a person: the `$BROWSER` command when set (the URL as its last argument, or in place of
 * `%s`), else the platform's opener through `open`. Neither writes to jit's stdout. Any other scheme is refused:
 * URLs come from the provider, and a `file:` or custom scheme must never reach the OS handler.
 */
export function systemBrowser(env: Env): Browser {
  return {
    async open(url: URL) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`refusing to open a ${url.protocol} URL`)
      if (env.BROWSER) {
        await spawnBrowser(env.BROWSER, url.href, env, process.platform)
        return
      }
      const { default: open } = await import('open')
      const child = await open(url.href, { wait: false })
      await settleSpawn(child)
    },
  }
}

/**
 * Runs `$BROWSER` without a shell: the first of its `:`-separated commands, split on spaces (the xdg convention).
 * The URL never passes through a shell, so provider-controlled characters in it cannot run anything.
 */
async function spawnBrowser(spec: string, url: string, env: Env, platform: NodeJS.Platform): Promise<void> {
  // Windows paths have a colon (C:\...), so the xdg list separator only applies elsewhere.
  const first = platform === 'win32' ? spec : (spec.split(':').find((s) => s.trim() !== '') ?? spec)
  const words = first.trim().split(/\s+/)
  const hasPlaceholder = words.some((w) => w.includes('%s'))
  const args = hasPlaceholder ? words.slice(1).map((w) => w.replace('%s', url)) : [...words.slice(1), url]
  const child = spawn(words[0]!, args, { detached: true, stdio: 'ignore', env: env as NodeJS.ProcessEnv })
  child.unref()
  await settleSpawn(child)
}

function settleSpawn(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.once('spawn', () => resolve())
  })
}

/** Where the login should happen, and why (reported with `--json` and `--debug`). */
export interface FlowChoice {
  flow: 'device' | 'pkce'
  reason: string
}

/**
 * `--flow auto`: the browser flow when a browser can be shown to the person at this terminal; the device flow over
 * SSH, in WSL without `$BROWSER`, and on Linux/BSD without a display (containers included).
 */
export function chooseFlow(env: Env, platform: NodeJS.Platform, fileExists: (path: string) => boolean = existsSync): FlowChoice {
  if (env.SSH_CONNECTION || env.SSH_TTY || env.SSH_CLIENT) return { flow: 'device', reason: 'an SSH session: the browser is on another machine' }
  if (env.BROWSER) return { flow: 'pkce', reason: '$BROWSER is set' }
  if (env.WSL_DISTRO_NAME || env.WSL_INTEROP) return { flow: 'device', reason: 'WSL without $BROWSER' }
  if (platform === 'darwin' || platform === 'win32') return { flow: 'pkce', reason: `a ${platform === 'darwin' ? 'macOS' : 'Windows'} desktop` }
  // A display wins over the container check: a container with a forwarded display can show a browser.
  if (env.DISPLAY || env.WAYLAND_DISPLAY) return { flow: 'pkce', reason: 'a graphical display' }
  if (platform === 'linux' && (fileExists('/.dockerenv') || fileExists('/run/.containerenv') || env.container)) {
    return { flow: 'device', reason: 'a container without a display or $BROWSER' }
  }
  return { flow: 'device', reason: 'no display' }
}

/**
 * Whether a browser can be shown to the person at this terminal: not over SSH, and on Linux/BSD only with a display
 * or `$BROWSER`.
 */
export function canOpenBrowser(env: Env, platform: NodeJS.Platform): boolean {
  if (env.SSH_CONNECTION || env.SSH_TTY || env.SSH_CLIENT) return false
  if (env.BROWSER) return true
  if (platform === 'darwin' || platform === 'win32') return true
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY)
}
