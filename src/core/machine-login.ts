import { ErrorCode, JitError } from '../errors.js'
import type { Clock } from '../platform/clock.js'
import type { SecretStore } from '../store/secret-store.js'
import type { CacheDeps } from './credential-cache.js'
import { finish, type LoginResult } from './login.js'
import type { ClientAuthSpec, OidcPort } from './ports.js'
import type { CredentialRequest } from './request.js'
import { PROTOCOL_SCOPES } from './scopes.js'

/** RFC 8693 §3: the CI system's OIDC token is an ID token. */
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'

/** Input of {@link machineLogin}. */
export interface MachineLoginInput {
  request: CredentialRequest
  flow: 'client-credentials' | 'token-exchange'
  /** How jit authenticates as the client (a secret from the env, a private key file, or none). */
  clientAuth: ClientAuthSpec
  /** token-exchange: how the CI token is traded. */
  exchange?: 'token-exchange' | 'client-assertion'
  /** token-exchange: fetches the CI system's own OIDC token (GitHub Actions, GitLab, a file or a variable). */
  subjectToken?: () => Promise<string>
  ttlParam?: string
  allowInsecureLoopback: boolean
  /** RFC 8693 §3 token type of the subject token; default `id_token`. */
  subjectTokenType?: 'id_token' | 'jwt' | 'access_token'
}

/** Dependencies of {@link machineLogin}. */
export type MachineLoginDeps = CacheDeps & { clock: Clock; oidc: () => Promise<OidcPort>; store: SecretStore }

/**
 * Gets a credential with no person: the client credentials grant (RFC 6749 §4.4), or workload identity — the CI
 * system's own OIDC token traded by token exchange (RFC 8693) or presented as a client assertion (RFC 7523) — then
 * caches it under the same deadline rule as any login.
 */
export async function machineLogin(deps: MachineLoginDeps, input: MachineLoginInput): Promise<LoginResult> {
  const { request } = input
  let clientAuth = input.clientAuth
  const params = new URLSearchParams()
  // Machine grants carry access scopes only: `openid` means nothing without a user and some providers reject it.
  const scopes = request.scopes.filter((s) => !PROTOCOL_SCOPES.has(s))
  if (scopes.length) params.set('scope', scopes.join(' '))
  // One access token per resource (RFC 8707 §2.2): the first one named.
  if (request.resources[0] !== undefined) params.set('resource', request.resources[0])
  if (request.audience) params.set('audience', request.audience)
  if (request.authorizationDetails) params.set('authorization_details', request.authorizationDetails)
  if (input.ttlParam) params.set(input.ttlParam, String(Math.floor(request.ttlMs / 1000)))

  let subject: string | undefined
  if (input.flow === 'token-exchange') {
    if (!input.subjectToken) {
      throw new JitError(ErrorCode.SUBJECT_TOKEN_UNAVAILABLE, 'the token-exchange flow needs the CI system\'s OIDC token and none is configured', {
        hint: 'set the profile\'s subject-token (github, env:NAME or file:PATH), or pass --subject-token-env / --subject-token-file',
      })
    }
    subject = await input.subjectToken()
    if (input.exchange === 'client-assertion') {
      clientAuth = { method: 'client_assertion', assertion: subject }
    } else {
      params.set('subject_token', subject)
      params.set('subject_token_type', input.subjectTokenType ? `urn:ietf:params:oauth:token-type:${input.subjectTokenType}` : ID_TOKEN_TYPE)
      params.set('requested_token_type', 'urn:ietf:params:oauth:token-type:access_token')
    }
  }

  const oidc = await deps.oidc()
  const session = await oidc.discover({
    issuer: request.issuer,
    clientId: request.clientId,
    clientAuth,
    allowInsecureLoopback: input.allowInsecureLoopback,
  })
  const tokens =
    input.flow === 'token-exchange' && input.exchange !== 'client-assertion'
      ? await session.tokenExchange(params)
      : await session.clientCredentials(params)
  // A narrower grant is reported by the caller, which knows whether it still serves the request.
  return finish(deps, { request, flow: input.flow, reporter: { warn: () => {} } }, tokens)
}
