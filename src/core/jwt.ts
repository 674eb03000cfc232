/**
 * Reads claims of a JWT access token without verifying it. Only used to shorten a deadline (`exp`) or to show
 * information; an unverified claim can never extend what jit hands out.
 */
export function readJwtPayload(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.')
  if (parts.length !== 3 || parts[1] === undefined) return undefined
  try {
    const json: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    return json !== null && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** The `exp` claim (epoch seconds) of a JWT, when the token is one and has a numeric `exp`. */
export function readJwtExp(token: string): number | undefined {
  const exp = readJwtPayload(token)?.exp
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined
}
