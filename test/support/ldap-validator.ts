import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet } from 'jose'

/** What {@link startLdapValidator} checks a bind password against. */
export interface LdapValidatorOptions {
  /** The public keys that may sign an access token (the test provider's `publicJwks`). */
  jwks: { keys: ReadonlyArray<Record<string, unknown>> }
  /** The `iss` a token must carry. */
  issuer: string
  /** The `aud` a token must carry. Default `urn:jit:db`. */
  audience?: string
  /** Role → the scope a token needs to log in as it. Default `{ jit_read: 'db:read', jit_write: 'db:write' }`. */
  roles?: Record<string, string>
}

/** One simple bind the validator answered. The password is never kept. */
export interface LdapBind {
  /** The bind DN as received, e.g. `uid=jit_read,ou=jit`. */
  dn: string
  ok: boolean
  /** `ok`, or the diagnosticMessage sent with invalidCredentials (e.g. `token expired`). */
  reason: string
}

/** A running validator. */
export interface LdapValidator {
  /** The TCP port on 127.0.0.1. */
  port: number
  /** Every bind answered since start, oldest first (live array). */
  binds: LdapBind[]
  /** Stops listening and drops open connections. */
  close(): Promise<void>
}

const DEFAULT_AUDIENCE = 'urn:jit:db'
const DEFAULT_ROLES: Record<string, string> = { jit_read: 'db:read', jit_write: 'db:write' }
// PostgreSQL builds the DN as ldapprefix + role + ldapsuffix without escaping, so anything but this shape is refused.
const DN = /^uid=([a-z_][a-z0-9_]*),ou=jit$/
// A bind is a few hundred bytes plus the token; anything this large is not PostgreSQL talking.
const MAX_MESSAGE = 64 * 1024

const TAG = {
  integer: 0x02,
  octetString: 0x04,
  enumerated: 0x0a,
  sequence: 0x30,
  bindRequest: 0x60,
  bindResponse: 0x61,
  unbindRequest: 0x42,
  abandonRequest: 0x50,
  extendedRequest: 0x77,
  extendedResponse: 0x78,
  simpleAuth: 0x80,
} as const

const RESULT = { success: 0, protocolError: 2, authMethodNotSupported: 7, invalidCredentials: 49, unwillingToPerform: 53 } as const

// Request tag → response tag for the operations that get an answer (RFC 4511 §4); only binds are served.
const RESPONSE_OF: Record<number, number> = {
  0x63: 0x65, // search → searchResDone
  0x66: 0x67, // modify
  0x68: 0x69, // add
  0x4a: 0x6b, // delete
  0x6c: 0x6d, // modDN
  0x6e: 0x6f, // compare
  [TAG.extendedRequest]: TAG.extendedResponse,
}

/**
 * Starts a minimal LDAPv3 server on 127.0.0.1 that plays the directory for PostgreSQL's `ldap` auth method in
 * simple-bind mode (`ldapprefix="uid=" ldapsuffix=",ou=jit"`). A bind as `uid=<role>,ou=jit` succeeds only when the
 * password is a JWT access token (`typ: at+jwt`) signed by a key of `jwks`, from `issuer`, for `audience`, not expired,
 * whose `scope` holds the scope the role needs. Failures answer invalidCredentials (49) with a diagnosticMessage,
 * which PostgreSQL logs as `LDAP diagnostics: ...`. Other operations get unwillingToPerform; malformed input closes
 * the connection.
 */
export async function startLdapValidator(opts: LdapValidatorOptions): Promise<LdapValidator> {
  const keys = createLocalJWKSet(opts.jwks as JSONWebKeySet)
  const audience = opts.audience ?? DEFAULT_AUDIENCE
  const roles = opts.roles ?? DEFAULT_ROLES
  const binds: LdapBind[] = []
  const sockets = new Set<Socket>()

  const check = async (dn: string, password: Buffer): Promise<string | undefined> => {
    const role = DN.exec(dn)?.[1]
    if (role === undefined) return 'malformed DN: expected uid=<role>,ou=jit'
    const needed = Object.hasOwn(roles, role) ? roles[role] : undefined
    if (needed === undefined) return `unknown role ${role}`
    if (password.length === 0) return 'empty password'
    let scope: unknown
    try {
      const { payload } = await jwtVerify(password.toString('utf8'), keys, { issuer: opts.issuer, audience, typ: 'at+jwt' })
      scope = payload.scope
    } catch (err) {
      return rejection(err, audience)
    }
    const granted = typeof scope === 'string' ? scope.split(' ') : []
    return granted.includes(needed) ? undefined : `scope ${needed} required for role ${role}`
  }

  const serve = (socket: Socket): void => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    let pending: Buffer = Buffer.alloc(0)
    // Answers go out in request order even though a verification is async.
    let queue = Promise.resolve()

    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      for (;;) {
        let element: Element | undefined
        try {
          element = readElement(pending, 0)
        } catch {
          socket.destroy()
          return
        }
        if (element === undefined) {
          if (pending.length > MAX_MESSAGE) socket.destroy()
          return
        }
        const message = pending.subarray(0, element.end)
        pending = pending.subarray(element.end)
        queue = queue
          .then(() => handle(socket, message))
          .catch(() => {
            socket.destroy()
          })
      }
    })
  }

  const handle = async (socket: Socket, message: Buffer): Promise<void> => {
    if (socket.destroyed) return
    const outer = readElement(message, 0, true)
    if (outer.tag !== TAG.sequence) throw new Error('not an LDAPMessage')
    const id = readElement(message, outer.start, true)
    if (id.tag !== TAG.integer) throw new Error('no messageID')
    const messageId = readInteger(message.subarray(id.start, id.end))
    const op = readElement(message, id.end, true)

    if (op.tag === TAG.unbindRequest) {
      socket.end()
      return
    }
    if (op.tag === TAG.abandonRequest) return
    if (op.tag !== TAG.bindRequest) {
      const responseTag = RESPONSE_OF[op.tag]
      if (responseTag === undefined) throw new Error(`unknown operation 0x${op.tag.toString(16)}`)
      const code = op.tag === TAG.extendedRequest ? RESULT.protocolError : RESULT.unwillingToPerform
      socket.write(ldapResult(messageId, responseTag, code, 'only simple bind is supported'))
      return
    }

    const version = readElement(message, op.start, true)
    const name = readElement(message, version.end, true)
    const auth = readElement(message, name.end, true)
    if (version.tag !== TAG.integer || name.tag !== TAG.octetString) throw new Error('malformed BindRequest')
    const dn = message.subarray(name.start, name.end).toString('utf8')
    let code: number
    let reason: string
    if (readInteger(message.subarray(version.start, version.end)) !== 3) {
      code = RESULT.protocolError
      reason = 'LDAPv3 required'
    } else if (auth.tag !== TAG.simpleAuth) {
      code = RESULT.authMethodNotSupported
      reason = 'only simple authentication is supported'
    } else {
      const failure = await check(dn, message.subarray(auth.start, auth.end))
      code = failure === undefined ? RESULT.success : RESULT.invalidCredentials
      reason = failure ?? 'ok'
    }
    binds.push({ dn, ok: code === RESULT.success, reason })
    if (!socket.destroyed) socket.write(ldapResult(messageId, TAG.bindResponse, code, code === RESULT.success ? '' : reason))
  }

  const server = createServer(serve)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('LDAP validator: no TCP address')

  return {
    port: address.port,
    binds,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}

/** The diagnosticMessage for a token jose refused. */
function rejection(err: unknown, audience: string): string {
  if (err instanceof errors.JWTExpired) return 'token expired'
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `audience: ${audience} required`
    if (err.claim === 'iss') return 'issuer: not the expected provider'
    if (err.claim === 'typ') return 'token type: at+jwt required'
    if (err.claim === 'nbf') return 'token not yet valid'
    return `claim ${err.claim}: ${err.reason}`
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature'
  if (err instanceof errors.JWKSNoMatchingKey) return 'bad signature: no key in the JWKS matches'
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'bad signature: algorithm not allowed'
  return 'not a JWT'
}

interface Element {
  tag: number
  /** Offset of the contents. */
  start: number
  /** Offset just past the contents. */
  end: number
}

/**
 * Reads the BER element at `offset`: `undefined` when `buffer` does not hold all of it yet (or, with `whole`, throws).
 * Throws on what LDAP forbids: multi-byte tags, the indefinite length, lengths beyond {@link MAX_MESSAGE}.
 */
function readElement(buffer: Buffer, offset: number, whole: true): Element
function readElement(buffer: Buffer, offset: number, whole?: boolean): Element | undefined
function readElement(buffer: Buffer, offset: number, whole = false): Element | undefined {
  const incomplete = (): undefined => {
    if (whole) throw new Error('truncated BER element')
    return undefined
  }
  if (buffer.length < offset + 2) return incomplete()
  const tag = buffer[offset]!
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte BER tag')
  const first = buffer[offset + 1]!
  let length = first
  let start = offset + 2
  if (first & 0x80) {
    const count = first & 0x7f
    if (count === 0 || count > 3) throw new Error('unsupported BER length')
    if (buffer.length < start + count) return incomplete()
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + buffer[start + i]!
    start += count
  }
  if (length > MAX_MESSAGE) throw new Error('BER element too long')
  const end = start + length
  if (buffer.length < end) return incomplete()
  return { tag, start, end }
}

function readInteger(bytes: Buffer): number {
  if (bytes.length === 0 || bytes.length > 4) throw new Error('bad INTEGER')
  const value = bytes.readIntBE(0, bytes.length)
  if (value < 0) throw new Error('negative INTEGER')
  return value
}

/** An LDAPMessage carrying an LDAPResult (resultCode, empty matchedDN, diagnosticMessage) under `tag`. */
function ldapResult(messageId: number, tag: number, code: number, diagnostic: string): Buffer {
  const result = Buffer.concat([
    tlv(TAG.enumerated, Buffer.from([code])),
    tlv(TAG.octetString, Buffer.alloc(0)),
    tlv(TAG.octetString, Buffer.from(diagnostic, 'utf8')),
  ])
  return tlv(TAG.sequence, Buffer.concat([tlv(TAG.integer, encodeInteger(messageId)), tlv(tag, result)]))
}

function encodeInteger(value: number): Buffer {
  const bytes: number[] = []
  let rest = value
  do {
    bytes.unshift(rest & 0xff)
    rest = Math.floor(rest / 256)
  } while (rest > 0)
  // A set top bit would read as negative.
  if (bytes[0]! & 0x80) bytes.unshift(0)
  return Buffer.from(bytes)
}

function tlv(tag: number, contents: Buffer): Buffer {
  const n = contents.length
  const header =
    n < 0x80 ? Buffer.from([tag, n]) : n < 0x100 ? Buffer.from([tag, 0x81, n]) : Buffer.from([tag, 0x82, n >> 8, n & 0xff])
  return Buffer.concat([header, contents])
}
