import { accessSync, constants } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { ComponentCheck } from './components.js'

/** The `$BROWSER` program that drives a real Chromium through the provider's pages. */
export const CHROMIUM_DRIVER = fileURLToPath(new URL('./chromium-browser.mjs', import.meta.url))
export const CHROMIUM = process.env.JIT_TEST_CHROMIUM ?? '/usr/bin/chromium'

/** Whether Debian's chromium and playwright-core are here. */
export function chromiumAvailability(): ComponentCheck {
  try {
    accessSync(CHROMIUM, constants.X_OK)
  } catch {
    return { ok: false, reason: `${CHROMIUM} is not an executable (apt-get install chromium, or set JIT_TEST_CHROMIUM)` }
  }
  try {
    createRequire(import.meta.url).resolve('playwright-core')
  } catch {
    return { ok: false, reason: 'playwright-core does not resolve (npm install)' }
  }
  return { ok: true }
}
