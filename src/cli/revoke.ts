import { readFileSync } from 'node:fs'
import type { Credential } from '../core/credential-cache.js'
import { readJwtExp } from '../core/jwt.js'
import type { RevocationReport } from '../core/logout.js'
import type { ClientAuthSpec } from '../core/ports.js'
import type { ConfigDoc } from '../config/config-file.js'
import type { Ctx } from './context.js'

/**
 * Revokes a credential's refresh token and access token (RFC 7009) with the client of its profile. A JWT access token
 * is reported as still valid until its exp: many providers cannot recall self-contained tokens.
 */
export function revoker(ctx: Ctx, doc: ConfigDoc): (credential: Credential) => Promise<RevocationReport> {
  return async (credential) => {
    const { meta } = credential
    const profile = doc.profiles[meta.profile]
    let clientAuth: ClientAuthSpec = { method: 'none' }
    if (profile?.privateKeyFile) {
      clientAuth = { method: 'private_key_jwt', privateKeyPem: readFileSync(profile.privateKeyFile, 'utf8'), ...(profile.privateKeyKid ? { kid: profile.privateKeyKid } : {}) }
    } else if (profile?.clientSecretEnv && ctx.deps.env[profile.clientSecretEnv]) {
      clientAuth = { method: profile.clientAuth === 'basic' ? 'client_secret_basic' : 'client_secret_post', secret: ctx.deps.env[profile.clientSecretEnv]! }
    }
    const oidc = await ctx.deps.oidc()
    const session = await oidc.discover({
      issuer: meta.issuer,
      clientId: meta.clientId,
      clientAuth,
      allowInsecureLoopback: profile?.insecureLoopback === true,
    })
    const report: RevocationReport = { profile: meta.profile, access: 'skipped' }
    if (credential.refreshToken) report.refresh = (await session.revoke(credential.refreshToken, 'refresh_token')) ? 'revoked' : 'unsupported'
    report.access = (await session.revoke(credential.accessToken, 'access_token')) ? 'revoked' : 'unsupported'
    const exp = readJwtExp(credential.accessToken)
    if (exp !== undefined && exp * 1000 > ctx.deps.clock.now()) {
      report.note = `the JWT access token stays valid at resource servers until ${new Date(exp * 1000).toISOString()} (self-contained tokens cannot be recalled)`
    }
    if (report.access === 'unsupported') report.note = 'the provider offers no revocation endpoint: the access token stays valid until it expires'
    return report
  }
}
