import type { Browser } from '../core/ports.js'
import type { Env } from './io.js'

/**
 * Opens http(s) URLs with `open` (which never writes to our stdout). Any other scheme is refused: URLs come from the
 * provider, and a `file:` or custom scheme must never reach the OS handler.
 */
export function systemBrowser(_env: Env): Browser {
  return {
    async open(url: URL) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`refusing to open a ${url.protocol} URL`)
      const { default: open } = await import('open')
      const child = await open(url.href, { wait: false })
      await new Promise<void>((resolve, reject) => {
        child.once('error', reject)
        child.once('spawn', () => resolve())
        setTimeout(resolve, 1000).unref()
      })
    },
  }
}

/**
 * Whether a browser can be shown to the person at this terminal: not over SSH, and on Linux/BSD only with a display.
 */
export function canOpenBrowser(env: Env, platform: NodeJS.Platform): boolean {
  if (env.SSH_CONNECTION || env.SSH_TTY || env.SSH_CLIENT) return false
  if (platform === 'darwin' || platform === 'win32') return true
  if (env.BROWSER) return true
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY)
}
