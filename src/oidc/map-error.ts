import * as client from 'openid-client'
import { ErrorCode, JitError } from '../errors.js'

const REFUSALS: Record<string, { code: (typeof ErrorCode)[keyof typeof ErrorCode]; text: string }> = {
  access_denied: { code: ErrorCode.ACCESS_DENIED, text: 'the login was refused' },
  expired_token: { code: ErrorCode.DEVICE_CODE_EXPIRED, text: 'the device code expired before the login was approved' },
  interaction_required: { code: ErrorCode.ACCESS_DENIED, text: 'the provider requires an interaction that was not done' },
  login_required: { code: ErrorCode.ACCESS_DENIED, text: 'the provider requires a fresh sign-in' },
  consent_required: { code: ErrorCode.ACCESS_DENIED, text: 'the provider requires consent that was not given' },
  unmet_authentication_requirements: { code: ErrorCode.ACCESS_DENIED, text: 'the sign-in did not meet the required authentication (MFA)' },
  invalid_grant: { code: ErrorCode.ACCESS_DENIED, text: 'the provider refused the grant' },
  invalid_scope: { code: ErrorCode.ACCESS_DENIED, text: 'the provider refused the scope' },
  unauthorized_client: { code: ErrorCode.ACCESS_DENIED, text: 'the provider does not allow this client that grant' },
}

/** Keeps provider-supplied text to one short printable line: it ends up in a terminal. */
function clean(text: unknown): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must not reach a terminal
  return String(text).replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 300)
}

/**
 * Translates anything openid-client (or fetch) throws into a {@link JitError}, keeping the original as `cause`.
 * The one place that knows openid-client's error shapes.
 */
export function mapOidcError(err: unknown, context: { issuer: string; during: string }): JitError {
  if (err instanceof JitError) return err
  if (err instanceof client.ResponseBodyError) {
    const refusal = REFUSALS[err.error]
    const desc = err.error_description ? `: ${clean(err.error_description)}` : ''
    if (refusal) return new JitError(refusal.code, `${refusal.text} (${err.error}${desc})`, { cause: err })
    return new JitError(ErrorCode.IDP_ERROR, `the provider answered ${err.error}${desc} during ${context.during}`, { cause: err })
  }
  if (err instanceof client.AuthorizationResponseError) {
    const refusal = REFUSALS[err.error]
    const desc = err.error_description ? `: ${clean(err.error_description)}` : ''
    if (refusal) return new JitError(refusal.code, `${refusal.text} (${err.error}${desc})`, { cause: err })
    return new JitError(ErrorCode.IDP_ERROR, `the provider answered ${err.error}${desc} during ${context.during}`, { cause: err })
  }
  if (err instanceof client.ClientError) {
    const code = err.code ?? ''
    if (code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
      const cause = err.cause as { attribute?: string; body?: Record<string, unknown>; expected?: string } | undefined
      if (cause?.attribute === 'issuer') {
        return new JitError(
          ErrorCode.ISSUER_MISMATCH,
          `the discovery document of "${context.issuer}" names another issuer "${clean(cause.body?.issuer)}"`,
          { cause: err, hint: 'check the issuer URL: it must be exactly the "issuer" the provider publishes' },
        )
      }
    }
    if (code === 'OAUTH_HTTP_REQUEST_FORBIDDEN') {
      return new JitError(ErrorCode.INSECURE_ISSUER, `refusing plain http to "${context.issuer}"`, {
        cause: err,
        hint: 'use https, or for a local provider on 127.0.0.1: --insecure-loopback',
      })
    }
    if (code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT') {
      return new JitError(ErrorCode.NETWORK, `the provider did not answer in time during ${context.during}`, { cause: err })
    }
    if (context.during === 'discovery') {
      return new JitError(ErrorCode.DISCOVERY_FAILED, `no valid discovery document at "${context.issuer}": ${describe(err)}`, {
        cause: err,
        hint: 'check the issuer URL; jit reads <issuer>/.well-known/openid-configuration',
      })
    }
    return new JitError(ErrorCode.INVALID_RESPONSE, `invalid response from the provider during ${context.during}: ${describe(err)}`, { cause: err })
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new JitError(ErrorCode.NETWORK, `the provider did not answer in time during ${context.during}`, { cause: err })
  }
  if (err instanceof TypeError) {
    const reason = err.cause instanceof Error ? clean(err.cause.message) : clean(err.message)
    const code = context.during === 'discovery' ? ErrorCode.DISCOVERY_FAILED : ErrorCode.NETWORK
    return new JitError(code, `cannot reach "${context.issuer}" during ${context.during}: ${reason}`, { cause: err })
  }
  return new JitError(ErrorCode.IDP_ERROR, `unexpected failure during ${context.during}: ${describe(err)}`, { cause: err })
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return clean(err)
  const inner = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return clean(`${err.message}${inner}`)
}
