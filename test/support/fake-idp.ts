import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'

/** A scripted answer. */
export interface Reply {
  status?: number
  body: unknown
  headers?: Record<string, string>
}

/** A scripted OpenID provider for the hostile cases a real one will not produce (kubelogin's oidcserver). */
export interface FakeIdp {
  issuer: string
  /** Signs an ID token with the provider's key (or `withKey`), claims merged over sane defaults. */
  idToken(claims?: Record<string, unknown>, withKey?: CryptoKey): Promise<string>
  /** Another key, not in the JWKS: for forged signatures. */
  strangerKey: CryptoKey
  /** What the device authorization endpoint answers. */
  device: () => Reply
  /** What the token endpoint answers, per call (1-based). */
  token: (call: number, body: URLSearchParams) => Reply | Promise<Reply>
  /** Requests to routes nobody scripted: the test should expect this to stay empty. */
  unhandled: string[]
  tokenCalls: URLSearchParams[]
  close(): Promise<void>
}

/** Starts a {@link FakeIdp} on 127.0.0.1, port 0. */
export async function startFakeIdp(opts: { clientId?: string; discovery?: (issuer: string) => Record<string, unknown> } = {}): Promise<FakeIdp> {
  const clientId = opts.clientId ?? 'jit-cli'
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const stranger = await generateKeyPair('RS256', { extractable: true })
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }
  const state: FakeIdp = {
    issuer: '',
    strangerKey: stranger.privateKey,
    unhandled: [],
    tokenCalls: [],
    device: () => ({
      body: {
        device_code: 'dev-code-1',
        user_code: 'ABCD-EFGH',
        verification_uri: `${state.issuer}/device`,
        verification_uri_complete: `${state.issuer}/device?user_code=ABCD-EFGH`,
        expires_in: 600,
        interval: 0.01,
      },
    }),
    token: () => ({ status: 400, body: { error: 'authorization_pending' } }),
    idToken: async (claims = {}, withKey) => {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({ sub: 'alice', ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(String(claims.iss ?? state.issuer))
        .setAudience(String(claims.aud ?? clientId))
        .setIssuedAt(now)
        .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : now + 300)
        .sign(withKey ?? privateKey)
    },
    close: async () => {},
  }
  const send = (res: ServerResponse, reply: Reply): void => {
    res.statusCode = reply.status ?? 200
    res.setHeader('content-type', 'application/json')
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v)
    res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body))
  }
  const readBody = async (req: IncomingMessage): Promise<URLSearchParams> => {
    let text = ''
    for await (const chunk of req) text += chunk
    return new URLSearchParams(text)
  }
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', state.issuer).pathname
      if (path === '/.well-known/openid-configuration') {
        return send(res, {
          body: opts.discovery?.(state.issuer) ?? {
            issuer: state.issuer,
            authorization_endpoint: `${state.issuer}/authorize`,
            token_endpoint: `${state.issuer}/token`,
            device_authorization_endpoint: `${state.issuer}/device/auth`,
            jwks_uri: `${state.issuer}/jwks`,
            response_types_supported: ['code'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
          },
        })
      }
      if (path === '/jwks') return send(res, { body: { keys: [jwk] } })
      if (path === '/device/auth' && req.method === 'POST') {
        await readBody(req)
        return send(res, state.device())
      }
      if (path === '/token' && req.method === 'POST') {
        const body = await readBody(req)
        state.tokenCalls.push(body)
        return send(res, await state.token(state.tokenCalls.length, body))
      }
      state.unhandled.push(`${req.method} ${path}`)
      send(res, { status: 500, body: { error: 'server_error', error_description: `unscripted route ${path}` } })
    })()
  })
  state.close = () => new Promise<void>((r) => server.close(() => r()))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  state.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return state
}
