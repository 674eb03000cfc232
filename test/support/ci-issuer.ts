/**
 * A CI system's OIDC issuer on 127.0.0.1 for the workload-identity tests: it signs ID tokens for a job the way GitHub
 * Actions (`repository` claim) or GitLab CI (`project_path` claim) do, publishes discovery and its JWKS, and serves a
 * GitHub Actions-style ID-token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL` / `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; served for
 * either kind, minting that kind's default token).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import type { TrustedCiIssuer } from '../../scripts/local-provider.mjs'

/** The workload every default token names: `repository` (GitHub) or `project_path` (GitLab). */
export const CI_WORKLOAD = 'acme/deploy'
/** The `sub` of the default GitHub Actions token. */
export const GITHUB_SUB = 'repo:acme/deploy:ref:refs/heads/main'
/** The `sub` of the default GitLab CI token. */
export const GITLAB_SUB = 'project_path:acme/deploy:ref_type:branch:ref:main'

/** The claims a test controls when minting; the rest are filled in like the real CI system's. */
export interface MintClaims {
  /** `aud` (GitHub: the `audience` query parameter; GitLab: `id_tokens.NAME.aud`). */
  aud: string
  /** GitHub's workload claim; default `'acme/deploy'` for `kind: 'github'`; `null` leaves it out. */
  repository?: string | null
  /** GitLab's workload claim; default `'acme/deploy'` for `kind: 'gitlab'`; `null` leaves it out. */
  project_path?: string | null
  /** Default: the kind's usual subject for `acme/deploy` on `main`. */
  sub?: string
  /** Seconds from now until `exp`; negative for an already expired token. Default 300. */
  expiresIn?: number
  /** Any other claim to add or override (`iss` included, to forge a token from elsewhere). */
  [claim: string]: unknown
}

/** One call to the ID-token endpoint. */
export interface IdTokenRequest {
  /** The `audience` query parameter, or null without one. */
  audience: string | null
  /** Whether the bearer token was the right one (a token was minted only then). */
  authorized: boolean
}

export interface CiIssuer {
  readonly kind: 'github' | 'gitlab'
  /** `http://127.0.0.1:PORT` */
  readonly issuer: string
  /** The public signing key set (also served at `/jwks` and `/.well-known/jwks`). */
  readonly jwks: { keys: JWK[] }
  /** The secret the ID-token endpoint expects as `Authorization: bearer ...`. */
  readonly requestToken: string
  /** Calls to the ID-token endpoint, oldest first. */
  readonly requests: IdTokenRequest[]
  /** Signs an RS256 ID token for a job of this CI system, `iss` = `issuer`. */
  mint(claims: MintClaims): Promise<string>
  /** The variables GitHub Actions sets in a job with `permissions: id-token: write`. */
  githubEnv(): { ACTIONS_ID_TOKEN_REQUEST_URL: string, ACTIONS_ID_TOKEN_REQUEST_TOKEN: string }
  /** The variable GitLab CI sets for `id_tokens: NAME: aud: AUDIENCE` (a freshly minted default token). */
  gitlabEnv(name: string, audience: string): Promise<Record<string, string>>
  /** An entry for `startLocalProvider({ trustedCiIssuers })` / `trustCiIssuer()` trusting this issuer. */
  trustEntry(audience: string | string[], allow?: Record<string, string[]>): TrustedCiIssuer
  /** Closes the server and every open connection. */
  close(): Promise<void>
}

/**
 * Starts a CI issuer on 127.0.0.1 with a fresh RS256 key.
 * @param opts.kind which CI system's claims the default tokens carry (default `'github'`)
 */
export async function startCiIssuer(opts: { kind?: 'github' | 'gitlab' } = {}): Promise<CiIssuer> {
  const kind = opts.kind ?? 'github'
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const kid = randomUUID()
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] }
  const requestToken = randomBytes(24).toString('base64url')
  const requests: IdTokenRequest[] = []

  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('CI issuer: no TCP address')
  const issuer = `http://127.0.0.1:${address.port}`

  /** The claims the real CI system adds to every job token. */
  const usualClaims = (): Record<string, unknown> => kind === 'github'
    ? {
        repository: CI_WORKLOAD,
        repository_owner: 'acme',
        ref: 'refs/heads/main',
        ref_type: 'branch',
        actor: 'octocat',
        workflow: 'deploy',
        event_name: 'push',
        run_id: '1234567890',
        job_workflow_ref: 'acme/deploy/.github/workflows/deploy.yml@refs/heads/main',
        runner_environment: 'github-hosted',
      }
    : {
        project_path: CI_WORKLOAD,
        namespace_path: 'acme',
        ref: 'main',
        ref_type: 'branch',
        user_login: 'octocat',
        pipeline_id: '1234567890',
        pipeline_source: 'push',
        ci_config_ref_uri: 'gitlab.example/acme/deploy//.gitlab-ci.yml@refs/heads/main',
        runner_environment: 'gitlab-hosted',
      }

  const mint = async ({ aud, sub, expiresIn = 300, ...rest }: MintClaims): Promise<string> => {
    const now = Math.floor(Date.now() / 1000)
    const exp = now + expiresIn
    // An already expired token was issued a minute before it expired.
    const iat = exp > now ? now : exp - 60
    const claims: Record<string, unknown> = {
      ...usualClaims(),
      jti: randomUUID(),
      iss: issuer,
      sub: sub ?? (kind === 'github' ? GITHUB_SUB : GITLAB_SUB),
      aud,
      nbf: iat,
      iat,
      exp,
      ...rest,
    }
    for (const [name, value] of Object.entries(claims)) if (value === null || value === undefined) delete claims[name]
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(privateKey)
  }

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(JSON.stringify(body))
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', issuer)
    if (req.method !== 'GET') return send(res, 405, { message: 'method not allowed' })
    switch (url.pathname) {
      case '/.well-known/openid-configuration':
        return send(res, 200, {
          issuer,
          jwks_uri: `${issuer}/jwks`,
          subject_types_supported: ['public', 'pairwise'],
          response_types_supported: ['id_token'],
          id_token_signing_alg_values_supported: ['RS256'],
          scopes_supported: ['openid'],
          claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', ...Object.keys(usualClaims())],
        })
      case '/jwks':
      case '/.well-known/jwks':
        return send(res, 200, jwks)
      case '/token': {
        const audience = url.searchParams.get('audience')
        const match = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')
        const authorized = match !== null && match[1] === requestToken
        requests.push({ audience, authorized })
        if (!authorized) return send(res, 401, { message: 'Bad credentials' })
        // Without an audience GitHub uses the repository owner's URL.
        const value = await mint({ aud: audience ?? 'https://github.com/acme' })
        return send(res, 200, { count: 1, value })
      }
      default:
        return send(res, 404, { message: 'Not Found' })
    }
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { message: String(err) }))
  })

  let closed = false
  return {
    kind,
    issuer,
    jwks,
    requestToken,
    requests,
    mint,
    githubEnv: () => ({
      ACTIONS_ID_TOKEN_REQUEST_URL: `${issuer}/token?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
    }),
    gitlabEnv: async (name, audience) => ({ [name]: await mint({ aud: audience }) }),
    trustEntry: (audience, allow) => ({ issuer, jwks, audience, ...(allow === undefined ? {} : { allow }) }),
    async close() {
      if (closed) return
      closed = true
      const done = new Promise((resolve) => server.close(() => resolve(undefined)))
      server.closeAllConnections()
      await done
    },
  }
}
