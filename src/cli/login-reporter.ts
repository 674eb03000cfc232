import type { ChalkInstance } from 'chalk'
import { formatDuration } from '../core/duration.js'
import type { LoginReporter } from '../core/login.js'
import type { Clock } from '../platform/clock.js'
import type { IO } from '../platform/io.js'
import { StatusLine, writeEvent } from './output.js'

/** Options of {@link humanLoginReporter}. */
export interface HumanReporterOptions {
  io: IO
  clock: Clock
  style: ChalkInstance
  /** Print a QR code of the complete verification URI (default: when stderr is a terminal). */
  qr: boolean
  renderQr: (text: string) => Promise<string>
}

/** Prose on stderr: the code, the URL, a QR code and a countdown while the person approves. */
export function humanLoginReporter(opts: HumanReporterOptions): LoginReporter & { ready: Promise<void> } {
  const { io, clock, style } = opts
  const status = new StatusLine(io, style)
  let pending: Promise<void> = Promise.resolve()
  let waitingText: (() => string) | undefined
  return {
    get ready() {
      return pending
    },
    started() {},
    authorizationRequest(info) {
      const lines = info.willOpen
        ? ['', 'Opening your browser to sign in. If it does not open, visit:', `  ${style.underline(info.url)}`]
        : ['', 'To sign in, open this URL in a browser (on this machine, or one that reaches its callback port):', `  ${style.underline(info.url)}`]
      io.err.write(`${lines.join('\n')}\n`)
      waitingText = () => `Waiting for the browser… ${style.dim('(Ctrl-C to cancel)')}`
      if (io.isErrTTY) status.start(waitingText)
      else io.err.write('waiting for the browser\n')
    },
    deviceAuthorization(info) {
      const url = info.verificationUriComplete ?? info.verificationUri
      const lines = [
        '',
        `To sign in, open ${style.bold.underline(info.verificationUri)}`,
        `and enter the code ${style.bold.yellow(info.userCode)}`,
      ]
      if (info.verificationUriComplete) lines.push(`(or open ${style.underline(info.verificationUriComplete)}, which has the code in it)`)
      io.err.write(`${lines.join('\n')}\n`)
      const show = async (): Promise<void> => {
        if (opts.qr) io.err.write(`\n${await opts.renderQr(url)}\n`)
        if (io.isErrTTY) {
          waitingText = () => `Waiting for approval… the code expires in ${formatDuration(info.expiresAt - clock.now())} ${style.dim('(Ctrl-C to cancel)')}`
          status.start(waitingText)
        } else {
          io.err.write(`waiting for approval (the code expires in ${formatDuration(info.expiresAt - clock.now())})\n`)
        }
      }
      pending = show()
    },
    browser(result) {
      status.stop()
      if (result.opened) io.err.write(`${style.dim('opened your browser')}\n`)
      else io.err.write(`${style.dim(`could not open a browser (${result.reason}); open the URL above by hand`)}\n`)
      // Keep showing that jit still waits (the countdown or the browser line).
      if (waitingText && io.isErrTTY) status.start(waitingText)
    },
    stopped() {
      status.stop()
    },
    warn(message) {
      status.stop()
      io.err.write(`${style.yellow('warning:')} ${message}\n`)
    },
  }
}

/** JSON Lines on stderr, one object per step (DESIGN.md §2), for wrappers and tests. */
export function jsonLoginReporter(io: IO, profile: string, flowReason?: string): LoginReporter {
  return {
    started(info) {
      writeEvent(io, { event: 'login_started', profile, flow: info.flow, ...(flowReason ? { flow_reason: flowReason } : {}), issuer: info.issuer })
    },
    authorizationRequest(info) {
      writeEvent(io, { event: 'authorization_request', url: info.url, redirect_uri: info.redirectUri, will_open: info.willOpen })
    },
    deviceAuthorization(info) {
      writeEvent(io, {
        event: 'device_authorization',
        verification_uri: info.verificationUri,
        verification_uri_complete: info.verificationUriComplete ?? null,
        user_code: info.userCode,
        expires_in: info.expiresIn,
        expires_at: new Date(info.expiresAt).toISOString(),
      })
    },
    browser(result) {
      writeEvent(io, result.opened ? { event: 'browser_opened', url: result.url } : { event: 'browser_failed', url: result.url, reason: result.reason })
    },
    stopped() {},
    warn(message) {
      writeEvent(io, { event: 'warning', message })
    },
  }
}
