import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { CallbackRequest, LoopbackListener, LoopbackPort } from '../core/ports.js'
import { ErrorCode, JitError } from '../errors.js'

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
}

function page(res: ServerResponse, status: number, p: { ok: boolean; title: string; message: string }): void {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
  res.writeHead(status, HEADERS)
  res.end(
    `<!doctype html><html><head><meta charset="utf-8"><title>jit: ${esc(p.title)}</title>` +
      '<style>body{font:16px system-ui,sans-serif;margin:4em auto;max-width:36em;color:#222}h1{font-size:1.4em}</style></head>' +
      `<body><h1>${p.ok ? '✓' : '✗'} ${esc(p.title)}</h1><p>${esc(p.message)}</p></body></html>`,
  )
}

/**
 * The RFC 8252 §7.3 loopback redirect listener. It binds 127.0.0.1 only (never all interfaces), answers only GETs on
 * the callback path with a Host header naming itself (a page on another site cannot reach it through DNS rebinding),
 * queues callbacks that arrive before the login asks for one (a fast redirect is never lost), and hands exactly one
 * accepted callback to the login.
 */
export function loopbackPort(): LoopbackPort {
  return {
    async listen({ port, host, path, onRejected }): Promise<LoopbackListener> {
      const queue: Array<{ url: URL; res: ServerResponse }> = []
      let wake: (() => void) | undefined
      let consumed = false

      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        const actualPort = (server.address() as AddressInfo | null)?.port
        const hostHeader = req.headers.host ?? ''
        if (hostHeader !== `127.0.0.1:${actualPort}` && hostHeader !== `localhost:${actualPort}`) {
          onRejected(`a request with an unexpected Host header "${hostHeader.slice(0, 100)}"`)
          page(res, 400, { ok: false, title: 'Wrong address', message: 'This address only serves the jit login on this machine.' })
          return
        }
        const url = new URL(req.url ?? '/', `http://${host}:${actualPort}`)
        if (url.pathname !== path) {
          page(res, 404, { ok: false, title: 'Not found', message: 'Nothing here. Return to your terminal.' })
          return
        }
        if (req.method !== 'GET') {
          res.writeHead(405, { allow: 'GET', ...HEADERS })
          res.end()
          return
        }
        if (consumed) {
          onRejected('a second callback after the login had its answer')
          page(res, 409, { ok: false, title: 'Already used', message: 'This login has already received its answer. Return to your terminal.' })
          return
        }
        queue.push({ url, res })
        wake?.()
      })

      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          const what = port === 0 ? 'a free port' : `port ${port}`
          if (err.code === 'EADDRINUSE') {
            reject(
              new JitError(ErrorCode.PORT_IN_USE, `cannot listen on 127.0.0.1:${port} for the login callback: the port is in use`, {
                hint: 'free the port, or choose another with --redirect-port (it must match what the provider has registered)',
                cause: err,
              }),
            )
          } else {
            reject(new JitError(ErrorCode.PORT_IN_USE, `cannot listen on 127.0.0.1 ${what} for the login callback: ${err.code ?? err.message}`, { cause: err }))
          }
        })
        server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve())
      })
      const actual = (server.address() as AddressInfo).port

      return {
        redirectUri: `http://${host}:${actual}${path}`,
        async next(accept, signal): Promise<CallbackRequest> {
          for (;;) {
            const item = queue.shift()
            if (item) {
              const refusal = accept(item.url)
              if (refusal !== undefined) {
                onRejected(refusal)
                page(item.res, 400, { ok: false, title: 'Not accepted', message: `${refusal}. Return to your terminal.` })
                continue
              }
              consumed = true
              // Later queued callbacks are answered now, not left hanging.
              for (const extra of queue.splice(0)) {
                onRejected('a second callback after the login had its answer')
                page(extra.res, 409, { ok: false, title: 'Already used', message: 'This login has already received its answer.' })
              }
              let answered = false
              return {
                url: item.url,
                respond: (p) => {
                  if (answered) return
                  answered = true
                  page(item.res, p.ok ? 200 : 400, p)
                },
              }
            }
            if (signal.aborted) throw signal.reason
            await new Promise<void>((resolve, reject) => {
              const onAbort = (): void => reject(signal.reason)
              signal.addEventListener('abort', onAbort, { once: true })
              wake = () => {
                signal.removeEventListener('abort', onAbort)
                wake = undefined
                resolve()
              }
            })
          }
        },
        close: () =>
          new Promise<void>((resolve) => {
            for (const { res } of queue.splice(0)) page(res, 410, { ok: false, title: 'Login ended', message: 'This login is over.' })
            server.close(() => resolve())
            server.closeAllConnections()
          }),
      }
    },
  }
}
