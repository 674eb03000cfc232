import { describe, expect, it } from 'vitest'
import { chooseFlow } from '../../../src/platform/browser.js'

const none = (): boolean => false
const docker = (p: string): boolean => p === '/.dockerenv'

describe('chooseFlow (--flow auto)', () => {
  it.each([
    ['SSH', { SSH_CONNECTION: '1 2 3 4', DISPLAY: ':0' }, 'linux', none, 'device'],
    ['SSH_TTY on a Mac', { SSH_TTY: '/dev/pts/1' }, 'darwin', none, 'device'],
    ['$BROWSER set', { BROWSER: 'w3m' }, 'linux', docker, 'pkce'],
    ['WSL without $BROWSER', { WSL_DISTRO_NAME: 'Ubuntu', DISPLAY: ':0' }, 'linux', none, 'device'],
    ['a Linux desktop', { DISPLAY: ':0' }, 'linux', none, 'pkce'],
    ['Wayland', { WAYLAND_DISPLAY: 'wayland-0' }, 'linux', none, 'pkce'],
    ['a container without display', {}, 'linux', docker, 'device'],
    ['a headless Linux box', {}, 'linux', none, 'device'],
    ['macOS', {}, 'darwin', none, 'pkce'],
    ['Windows', {}, 'win32', none, 'pkce'],
  ] as const)('%s → %s', (_name, env, platform, exists, flow) => {
    expect(chooseFlow(env, platform, exists).flow).toBe(flow)
  })
})

describe('systemBrowser with $BROWSER', () => {
  it('runs the command without a shell: the URL arrives as one argument, whatever it contains', async () => {
    const { mkdtempSync, readFileSync, writeFileSync, existsSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { systemBrowser } = await import('../../../src/platform/browser.js')
    const dir = mkdtempSync(join(tmpdir(), 'jit-browser-'))
    const script = join(dir, 'record.cjs')
    const out = join(dir, 'argv.json')
    writeFileSync(script, `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.argv.slice(2)))`)
    const url = new URL('https://idp.example/auth?x=1;touch%20/tmp/pwned&y=$(id)')
    await systemBrowser({ BROWSER: `${process.execPath} ${script} --flag` }).open(url)
    await expect.poll(() => existsSync(out)).toBe(true)
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(['--flag', url.href])
  })

  it('refuses URLs that are not http(s)', async () => {
    const { systemBrowser } = await import('../../../src/platform/browser.js')
    await expect(systemBrowser({ BROWSER: 'true' }).open(new URL('file:///etc/passwd'))).rejects.toThrow(/refusing to open a file: URL/)
  })
})
