import { Chalk } from 'chalk'
import { describe, expect, it } from 'vitest'
import { humanLoginReporter, jsonLoginReporter } from '../../../src/cli/login-reporter.js'
import { fixedClock } from '../../support/clock.js'
import { testIO } from '../../support/test-io.js'

const info = {
  userCode: 'WDJB-MJHT',
  verificationUri: 'https://idp.example/device',
  verificationUriComplete: 'https://idp.example/device?user_code=WDJB-MJHT',
  expiresIn: 600,
  expiresAt: 0,
}

describe('humanLoginReporter', () => {
  it('on a terminal: URL, code, a QR code of the complete URI, and a countdown', async () => {
    const io = testIO({ tty: true })
    const clock = fixedClock(1_000_000)
    const qrFor: string[] = []
    const r = humanLoginReporter({
      io,
      clock,
      style: new Chalk({ level: 0 }),
      qr: true,
      renderQr: async (text) => {
        qrFor.push(text)
        return '█▀▀█ QR'
      },
    })
    r.deviceAuthorization({ ...info, expiresAt: 1_000_000 + 600_000 })
    await r.ready
    r.stopped()
    const err = io.stderr()
    expect(err).toContain('To sign in, open https://idp.example/device')
    expect(err).toContain('and enter the code WDJB-MJHT')
    expect(err).toContain('█▀▀█ QR')
    expect(qrFor).toEqual([info.verificationUriComplete])
    expect(err).toContain('Waiting for approval… the code expires in 10m')
    expect(io.stdout()).toBe('')
  })

  it('elsewhere: no QR, no spinner, one waiting line, no escape codes', async () => {
    const io = testIO()
    const r = humanLoginReporter({ io, clock: fixedClock(0), style: new Chalk({ level: 0 }), qr: false, renderQr: async () => 'QR' })
    r.deviceAuthorization({ ...info, expiresAt: 300_000 })
    await r.ready
    r.browser({ url: info.verificationUriComplete, opened: false, reason: 'no display' })
    r.stopped()
    const err = io.stderr()
    expect(err).not.toContain('QR')
    expect(err).toContain('waiting for approval (the code expires in 5m)\n')
    expect(err).toContain('could not open a browser (no display); open the URL above by hand')
    // eslint-disable-next-line no-control-regex
    expect(err).not.toMatch(/\u001b\[/)
  })
})

describe('jsonLoginReporter', () => {
  it('writes the DESIGN.md §2 events, one JSON object per line, on stderr', () => {
    const io = testIO()
    const r = jsonLoginReporter(io, 'prod')
    r.deviceAuthorization({ ...info, expiresAt: Date.UTC(2030, 0, 1) })
    r.browser({ url: info.verificationUriComplete, opened: true })
    const lines = io.stderr().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines).toEqual([
      {
        event: 'device_authorization',
        verification_uri: info.verificationUri,
        verification_uri_complete: info.verificationUriComplete,
        user_code: 'WDJB-MJHT',
        expires_in: 600,
        expires_at: '2030-01-01T00:00:00.000Z',
      },
      { event: 'browser_opened', url: info.verificationUriComplete },
    ])
    expect(io.stdout()).toBe('')
  })
})
