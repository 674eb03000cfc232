import { execFile } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { promisify } from 'node:util'
import { once } from 'node:events'
import { decodeJwt, generateKeyPair, SignJWT } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalProvider, type LocalProvider } from '../../scripts/local-provider.mjs'
import { componentGate, describeWithComponent } from '../support/components.js'
import { startLdapValidator, type LdapValidator } from '../support/ldap-validator.js'
import { postgresAvailability, startPostgres, type TestPostgres } from '../support/postgres.js'

const execFileAsync = promisify(execFile)
const gate = componentGate('PostgreSQL 15 (server and psql)', postgresAvailability)

let idp: LocalProvider
let ldap: LdapValidator

beforeAll(async () => {
  idp = await startLocalProvider({ deviceInterval: 0.05 })
  ldap = await startLdapValidator({ jwks: idp.publicJwks, issuer: idp.issuer })
})
afterAll(async () => {
  await ldap?.close()
  await idp?.close()
})

/** A real access token from the local provider: a device flow played by hand. */
async function deviceToken(scope: string, ttl?: number): Promise<string> {
  const auth = await postForm('/device/auth', { client_id: idp.clientId, scope: `openid ${scope}` })
  await idp.approveDevice(String(auth.verification_uri_complete))
  const form: Record<string, string> = {
    grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
    device_code: String(auth.device_code),
    client_id: idp.clientId,
  }
  if (ttl !== undefined) form.ttl = String(ttl)
  for (let attempt = 0; attempt < 100; attempt++) {
    const body = await postForm('/token', form, true)
    if (typeof body.access_token === 'string') return body.access_token
    if (body.error !== 'authorization_pending' && body.error !== 'slow_down') throw new Error(`token request: ${JSON.stringify(body)}`)
    await sleep(Number(auth.interval ?? 0.05) * 1000)
  }
  throw new Error('the device code was never redeemed')
}

async function postForm(path: string, form: Record<string, string>, errorsToo = false): Promise<Record<string, unknown>> {
  const res = await fetch(`${idp.issuer}${path}`, { method: 'POST', body: new URLSearchParams(form) })
  const body = (await res.json()) as Record<string, unknown>
  if (!res.ok && !errorsToo) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`)
  return body
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

describeWithComponent('real PostgreSQL with LDAP auth against the token validator', gate, () => {
  let pg: TestPostgres

  beforeAll(async () => {
    pg = await startPostgres({ ldapPort: ldap.port })
  })
  afterAll(async () => {
    await pg?.stop()
  })
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(`--- postgres log ---\n${pg?.log().slice(-4000)}`)
  })

  /** The binds the validator answers while `action` runs. */
  async function bindsDuring<T>(action: () => Promise<T>): Promise<{ result: T; binds: LdapValidator['binds'] }> {
    const before = ldap.binds.length
    const result = await action()
    return { result, binds: ldap.binds.slice(before) }
  }

  it('lets a db:read token in as jit_read', async () => {
    // Given a db:read access token from the provider
    const token = await deviceToken('db:read')
    expect(token.length).toBeGreaterThan(600)

    // When psql logs in as jit_read with it as the password
    const { result, binds } = await bindsDuring(() =>
      pg.psql(['-U', 'jit_read', '-At', '-c', 'select current_user'], { PGPASSWORD: token }),
    )

    // Then the server asked the validator and let the role in
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('jit_read\n')
    expect(binds).toEqual([{ dn: 'uid=jit_read,ou=jit', ok: true, reason: 'ok' }])

    // And the role has the grants of a reader only
    const read = await pg.psql(['-U', 'jit_read', '-At', '-c', 'select name from items where id = 1'], { PGPASSWORD: token })
    expect(read.stdout).toBe('first\n')
    const write = await pg.psql(['-U', 'jit_read', '-c', "insert into items values (9, 'no')"], { PGPASSWORD: token })
    expect(write.code).not.toBe(0)
    expect(write.stderr).toMatch(/permission denied for table items/)
  })

  it('refuses a db:read token for jit_write, and says why', async () => {
    const token = await deviceToken('db:read')

    const { result, binds } = await bindsDuring(() =>
      pg.psql(['-U', 'jit_write', '-At', '-c', 'select current_user'], { PGPASSWORD: token }),
    )

    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(/LDAP authentication failed for user "jit_write"/)
    expect(binds).toEqual([{ dn: 'uid=jit_write,ou=jit', ok: false, reason: 'scope db:write required for role jit_write' }])
    expect(pg.log()).toContain('LDAP diagnostics: scope db:write required for role jit_write')
  })

  it('lets a db:write token in as jit_write, which can insert', async () => {
    const token = await deviceToken('db:write')

    const insert = await pg.psql(['-U', 'jit_write', '-At', '-c', "insert into items values (2, 'by jit_write') returning current_user"], {
      PGPASSWORD: token,
    })
    expect(insert.stderr).toBe('')
    expect(insert.stdout).toBe('jit_write\nINSERT 0 1\n')

    // pg.env is enough for a psql started by someone else (as jit exec will)
    const count = await execFileAsync('psql', ['-X', '-w', '-U', 'jit_write', '-At', '-c', 'select count(*) from items where id = 2'], {
      env: { PATH: process.env.PATH, ...pg.env, PGPASSWORD: token },
    })
    expect(count.stdout).toBe('1\n')
  })

  it('refuses a token once it has expired', async () => {
    // Given a token that lives for 2 s and works while it lives
    const token = await deviceToken('db:read', 2)
    const exp = decodeJwt(token).exp!
    const fresh = await pg.psql(['-U', 'jit_read', '-At', '-c', 'select 1'], { PGPASSWORD: token })
    expect(fresh.stdout).toBe('1\n')

    // When it is replayed after its exp
    await sleep(Math.max(0, (exp + 1) * 1000 - Date.now()))
    const { result, binds } = await bindsDuring(() =>
      pg.psql(['-U', 'jit_read', '-At', '-c', 'select 1'], { PGPASSWORD: token }),
    )

    // Then the server refuses it because the validator found it expired
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/LDAP authentication failed for user "jit_read"/)
    expect(binds).toEqual([{ dn: 'uid=jit_read,ou=jit', ok: false, reason: 'token expired' }])
    expect(pg.log()).toContain('LDAP diagnostics: token expired')
  })

  it('refuses a garbage password and a token signed by another key', async () => {
    const garbage = await bindsDuring(() => pg.psql(['-U', 'jit_read', '-c', 'select 1'], { PGPASSWORD: 'not-a-token' }))
    expect(garbage.result.code).toBe(2)
    expect(garbage.binds).toEqual([{ dn: 'uid=jit_read,ou=jit', ok: false, reason: 'not a JWT' }])

    // Same claims and kid as a real token, another private key
    const real = await deviceToken('db:read')
    const { privateKey } = await generateKeyPair('RS256')
    const forged = await new SignJWT(decodeJwt(real))
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: String(idp.publicJwks.keys[0]!.kid) })
      .sign(privateKey)
    const forgery = await bindsDuring(() => pg.psql(['-U', 'jit_read', '-c', 'select 1'], { PGPASSWORD: forged }))
    expect(forgery.result.code).toBe(2)
    expect(forgery.binds).toEqual([{ dn: 'uid=jit_read,ou=jit', ok: false, reason: 'bad signature' }])
  })

  it('rejects roles outside the LDAP rule before asking the validator', async () => {
    const token = await deviceToken('db:read')
    const { result, binds } = await bindsDuring(() => pg.psql(['-U', 'postgres', '-c', 'select 1'], { PGPASSWORD: token }))
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/pg_hba\.conf rejects connection/)
    expect(binds).toEqual([])
  })
})

describe('LDAP token validator on the wire', () => {
  /** A BER TLV; lengths up to 65535. */
  function tlv(tag: number, contents: Buffer): Buffer {
    const n = contents.length
    const header = n < 0x80 ? [tag, n] : n < 0x100 ? [tag, 0x81, n] : [tag, 0x82, n >> 8, n & 0xff]
    return Buffer.concat([Buffer.from(header), contents])
  }
  function bindRequest(id: number, dn: string, password: string): Buffer {
    const op = tlv(0x60, Buffer.concat([tlv(0x02, Buffer.from([3])), tlv(0x04, Buffer.from(dn)), tlv(0x80, Buffer.from(password))]))
    return tlv(0x30, Buffer.concat([tlv(0x02, Buffer.from([id])), op]))
  }
  /** Reads `count` LDAPMessages and returns [messageId, op tag, resultCode, diagnosticMessage] of each. */
  function responses(socket: Socket, count: number): Promise<Array<[number, number, number, string]>> {
    let data = Buffer.alloc(0)
    const out: Array<[number, number, number, string]> = []
    return new Promise((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        data = Buffer.concat([data, chunk])
        while (data.length >= 2 && data.length >= 2 + data[1]!) {
          const message = data.subarray(0, 2 + data[1]!)
          data = data.subarray(message.length)
          // Short forms throughout: 30 L 02 01 id op L 0a 01 code 04 00 04 L diag
          out.push([message[4]!, message[5]!, message[9]!, message.subarray(14, 14 + message[13]!).toString('utf8')])
        }
        if (out.length >= count) {
          socket.off('data', onData)
          resolve(out)
        }
      }
      socket.on('data', onData)
      socket.once('close', () => reject(new Error(`connection closed after ${out.length} responses`)))
    })
  }

  it('answers several binds on one connection, sent a byte at a time, with long passwords', async () => {
    const token = await deviceToken('db:write')
    const socket = connect(ldap.port, '127.0.0.1')
    await once(socket, 'connect')
    socket.setNoDelay(true)
    const wire = Buffer.concat([
      bindRequest(1, 'uid=jit_write,ou=jit', token),
      bindRequest(2, 'uid=jit_read,ou=jit', token),
      bindRequest(3, 'uid=jit_write,ou=jit)(uid=*', token),
      bindRequest(4, 'uid=nobody,ou=jit', token),
      bindRequest(5, 'uid=jit_write,ou=jit', 'x'.repeat(300)),
    ])
    const answers = responses(socket, 5)
    for (const byte of wire) {
      socket.write(Buffer.from([byte]))
      if (byte % 64 === 0) await sleep(0)
    }
    expect(await answers).toEqual([
      [1, 0x61, 0, ''],
      [2, 0x61, 49, 'scope db:read required for role jit_read'],
      [3, 0x61, 49, 'malformed DN: expected uid=<role>,ou=jit'],
      [4, 0x61, 49, 'unknown role nobody'],
      [5, 0x61, 49, 'not a JWT'],
    ])

    // An unbind closes the connection
    socket.write(Buffer.from([0x30, 0x05, 0x02, 0x01, 0x06, 0x42, 0x00]))
    await once(socket, 'close')
  })

  it('answers other operations with an error and drops malformed input', async () => {
    const socket = connect(ldap.port, '127.0.0.1')
    await once(socket, 'connect')
    // A search request (its body does not matter to the validator)
    socket.write(tlv(0x30, Buffer.concat([tlv(0x02, Buffer.from([7])), tlv(0x63, Buffer.alloc(0))])))
    expect(await responses(socket, 1)).toEqual([[7, 0x65, 53, 'only simple bind is supported']])
    socket.write(Buffer.from([0x30, 0x80, 0x00, 0x00]))
    await once(socket, 'close')
  })
})
