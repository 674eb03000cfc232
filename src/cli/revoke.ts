import type { Credential } from '../core/credential-cache.js'
import { readJwtExp } from '../core/jwt.js'
import type { RevocationReport } from '../core/logout.js'
import type { ClientAuthSpec } from '../core/ports.js'
import type { ConfigDoc } from '../config/config-file.js'
import { clientAuthFor } from './acquire.js'
import type { Ctx } from './context.js'

/**
 * Revokes a credential's refresh token and access token (RFC 7009) with the client of its profile. A JWT access token
 * is reported as still valid until its exp: many providers cannot recall self-contained tokens.
 */
export function revoker(ctx: Ctx, doc: ConfigDoc): (credential: Credential) => Promise<RevocationReport> {
  return async (credential) => {
    const { meta } = credential
    const profile = doc.profiles[meta.profile]
    // A profile deleted since login revokes as a public client; a missing secret too (the provider may refuse).
    const clientAuth: ClientAuthSpec = profile ? clientAuthFor(ctx, { profile, profileName: meta.profile }, { requireSecret: false }) : { method: 'none' }
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
