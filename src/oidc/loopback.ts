import { isIP } from 'node:net'

/** True for URLs whose host is a loopback address (127.0.0.0/8, ::1) or `localhost` (RFC 8252 §8.3). */
export function isLoopbackUrl(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  if (isIP(host) === 6) return host === '::1'
  return false
}
