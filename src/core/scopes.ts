/** Scopes that belong to the protocol, not to the access being asked for. */
export const PROTOCOL_SCOPES = new Set(['openid', 'offline_access', 'profile', 'email'])

/** Splits repeated and space-separated `--scope` values into a sorted, de-duplicated list. */
export function normalizeScopes(values: ReadonlyArray<string | undefined>): string[] {
  const set = new Set<string>()
  for (const value of values) {
    for (const s of (value ?? '').split(/[\s,]+/)) if (s !== '') set.add(s)
  }
  return [...set].sort()
}

/** The access scopes of `requested` that `granted` lacks (protocol scopes such as `openid` are not counted). */
export function missingScopes(requested: readonly string[], granted: readonly string[]): string[] {
  const have = new Set(granted)
  return requested.filter((s) => !PROTOCOL_SCOPES.has(s) && !have.has(s))
}
