import { basename } from 'node:path'
import { fileAuditLog } from '../audit/audit-log.js'
import { configDir } from '../config/config-file.js'
import type { Credential } from '../core/credential-cache.js'
import type { RevocationReport } from '../core/logout.js'
import type { AuditEvent, AuditEventType, AuditLog, CredentialMeta } from '../core/ports.js'
import type { CredentialRequest } from '../core/request.js'
import { JitError } from '../errors.js'
import type { Ctx } from './context.js'

let cached: { dir: string; log: AuditLog } | undefined

/** The audit trail of this invocation (`audit.log` in the config folder). Test deps may bring their own. */
export function auditLog(ctx: Ctx): AuditLog {
  if (ctx.deps.audit) return ctx.deps.audit
  const dir = configDir(ctx.deps.env)
  if (cached?.dir !== dir) cached = { dir, log: fileAuditLog(dir, { now: () => ctx.deps.clock.now(), onError: ctx.warn }) }
  return cached.log
}

const iso = (ms: number): string => new Date(ms).toISOString()

/** An event about a cached credential (never its token: only the fingerprint). */
export function credentialEvent(ctx: Ctx, event: AuditEventType, meta: CredentialMeta, extra: Partial<AuditEvent> = {}): void {
  auditLog(ctx).append({
    time: iso(ctx.deps.clock.now()),
    event,
    profile: meta.profile,
    issuer: meta.issuer,
    scopes: meta.scopes,
    resources: meta.resources,
    ...(meta.audience ? { audience: meta.audience } : {}),
    deadline: iso(meta.deadline),
    fingerprint: meta.fingerprint,
    flow: meta.flow,
    ...extra,
  })
}

/** `used`: `jit token` printed it, or `jit exec` ran a command (its basename only) with it. */
export function usedEvent(ctx: Ctx, credential: Credential, via: 'token' | 'exec', command?: string): void {
  credentialEvent(ctx, 'used', credential.meta, { via, ...(command ? { command: basename(command) } : {}) })
}

/** `refused` / `login_failed`: about a request, with the error's code and message as the reason. */
export function requestEvent(ctx: Ctx, event: 'refused' | 'login_failed' | 'expired', request: CredentialRequest, err: unknown, extra: Partial<AuditEvent> = {}): void {
  const reason = err instanceof JitError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err)
  auditLog(ctx).append({
    time: iso(ctx.deps.clock.now()),
    event,
    profile: request.profile,
    issuer: request.issuer,
    scopes: request.scopes,
    resources: request.resources,
    ...(request.audience ? { audience: request.audience } : {}),
    reason,
    ...extra,
  })
}

/** After a failed `token`/`exec`: `expired` (+ `refused`) for a credential past its deadline, `refused` otherwise. */
export function refusalEvents(ctx: Ctx, request: CredentialRequest, err: unknown, via: 'token' | 'exec'): void {
  if (!(err instanceof JitError)) return
  if (err.code === 'JIT_TOKEN_EXPIRED') requestEvent(ctx, 'expired', request, err)
  if (['JIT_TOKEN_EXPIRED', 'JIT_NOT_LOGGED_IN', 'JIT_ACCESS_DENIED', 'JIT_INTERACTION_REQUIRED', 'JIT_SUBJECT_TOKEN_UNAVAILABLE'].includes(err.code)) {
    requestEvent(ctx, 'refused', request, err, { via })
  }
}

/** `expired`: credentials that cleanup deleted. */
export function expiredEvents(ctx: Ctx, metas: readonly CredentialMeta[]): void {
  for (const m of metas) credentialEvent(ctx, 'expired', m)
}

/** `revoked`: what logout (or exec --revoke-on-exit) asked the provider to do. */
export function revokedEvent(ctx: Ctx, meta: CredentialMeta, report: RevocationReport): void {
  const parts = [`access token ${report.access}`, ...(report.refresh ? [`refresh token ${report.refresh}`] : [])]
  credentialEvent(ctx, 'revoked', meta, { detail: [parts.join(', '), report.note, report.reason].filter(Boolean).join('; ') })
}
