import { readFileSync } from 'node:fs'
import { ErrorCode, JitError } from '../errors.js'
import type { Env } from './io.js'

/** Options of {@link subjectTokenSource}. */
export interface SubjectTokenOptions {
  /** `github`, `env:NAME` or `file:PATH`; undefined: GitHub Actions when it offers a token, else none. */
  spec: string | undefined
  env: Env
  /** Audience of the CI token (GitHub's `audience` parameter): what the provider expects in `aud`. */
  audience: string
  fetch: typeof fetch
}

/**
 * Where the CI system's own OIDC token comes from (workload identity): GitHub Actions' ID-token endpoint, a variable
 * (GitLab CI's `id_tokens:`), or a file (Kubernetes projected tokens, anything else). Returns undefined when there is
 * no source. The token is read when called, never stored.
 */
export function subjectTokenSource(opts: SubjectTokenOptions): (() => Promise<string>) | undefined {
  const { spec, env } = opts
  if (spec === undefined) return env.ACTIONS_ID_TOKEN_REQUEST_URL ? () => githubToken(opts) : undefined
  if (spec === 'github') return () => githubToken(opts)
  if (spec.startsWith('env:')) {
    const name = spec.slice(4)
    return async () => {
      const value = env[name]?.trim()
      if (!value) {
        throw new JitError(ErrorCode.SUBJECT_TOKEN_UNAVAILABLE, `the variable ${name} that should hold the CI OIDC token is not set`, {
          hint: `in GitLab CI declare it under id_tokens: (${name}: { aud: ${opts.audience} })`,
        })
      }
      return value
    }
  }
  if (spec.startsWith('file:')) {
    const path = spec.slice(5)
    return async () => {
      let value: string
      try {
        value = readFileSync(path, 'utf8').trim()
      } catch (err) {
        throw new JitError(ErrorCode.SUBJECT_TOKEN_UNAVAILABLE, `cannot read the CI OIDC token from "${path}": ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err })
      }
      if (!value) throw new JitError(ErrorCode.SUBJECT_TOKEN_UNAVAILABLE, `the CI OIDC token file "${path}" is empty`)
      return value
    }
  }
  throw new JitError(ErrorCode.USAGE, `invalid subject-token "${spec}": use github, env:NAME or file:PATH`)
}

/** GitHub Actions: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=... with the request token as bearer. */
async function githubToken(opts: SubjectTokenOptions): Promise<string> {
  const url = opts.env.ACTIONS_ID_TOKEN_REQUEST_URL
  const bearer = opts.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN
  if (!url || !bearer) {
    throw new JitError(ErrorCode.SUBJECT_TOKEN_UNAVAILABLE, 'GitHub Actions offers no OIDC token to this job', {
      hint: 'add "permissions: id-token: write" to the workflow or job',
    })
  }
  const target = new URL(url)
  target.searchParams.set('audience', opts.audience)
  let res: Response
  try {
    res = await opts.fetch(target, { headers: { authorization: `bearer ${bearer}`, accept: 'application/json' }, signal: AbortSignal.timeout(15_000) })
  } catch (err) {
    throw new JitError(ErrorCode.NETWORK, `cannot reach GitHub's OIDC token endpoint: ${(err as Error).message}`, { cause: err })
  }
  if (!res.ok) {
    throw new JitError(ErrorCode.SUBJECT_TOKEN_UNAVAILABLE, `GitHub's OIDC token endpoint answered ${res.status}`, {
      hint: res.status === 401 || res.status === 403 ? 'check "permissions: id-token: write" in the workflow' : 'try again',
    })
  }
  const body = (await res.json().catch(() => undefined)) as { value?: unknown } | undefined
  if (typeof body?.value !== 'string' || body.value === '') {
    throw new JitError(ErrorCode.INVALID_RESPONSE, 'GitHub\'s OIDC token endpoint answered without a token')
  }
  return body.value
}
