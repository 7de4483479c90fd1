import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { AuthError, type AuthErrorCode } from './errors.js';
import { AccessTokens, type AccessTokenOptions } from './tokens.js';

const NOW = 1_800_000_000_000;
const secret = randomBytes(32);
const options: AccessTokenOptions = {
  issuer: 'https://issuer.test',
  audience: 'api',
  keys: [{ kid: 'k1', alg: 'HS256', secret }],
};

async function code(promise: Promise<unknown>): Promise<AuthErrorCode | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    if (!AuthError.isInstance(error)) throw error;
    return error.code;
  }
}

function forge(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signature = '',
): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(payload)}.${signature}`;
}

describe('AccessTokens', () => {
  it('signs and verifies with kid, typ, iss, aud, iat, exp and jti', async () => {
    const tokens = new AccessTokens(options);
    const { token, expiresAt } = await tokens.sign('user-1', 'session-1', NOW);
    expect(expiresAt).toBe(NOW + 900_000);
    const claims = await tokens.verify(token, NOW);
    expect(claims).toMatchObject({
      sub: 'user-1',
      sid: 'session-1',
      iss: 'https://issuer.test',
      aud: 'api',
      iat: NOW / 1000,
      exp: NOW / 1000 + 900,
    });
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(tokens.ttlMs).toBe(900_000);
  });

  it('rejects tampered payloads and signatures', async () => {
    const tokens = new AccessTokens(options);
    const { token } = await tokens.sign('user-1', 'session-1', NOW);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const changed = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'admin' }),
    ).toString('base64url');
    expect(await code(tokens.verify(`${header}.${changed}.${signature}`, NOW))).toBe(
      'TOKEN_INVALID',
    );
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(await code(tokens.verify(`${header}.${payload}.${flipped}`, NOW))).toBe('TOKEN_INVALID');
  });

  it('rejects alg none, unknown kid, a kid with the wrong alg, and a token signed by another key', async () => {
    const tokens = new AccessTokens(options);
    const payload = {
      sub: 'u',
      sid: 's',
      jti: 'j',
      iss: options.issuer,
      aud: options.audience,
      iat: NOW / 1000,
      exp: NOW / 1000 + 60,
    };
    const none = new UnsecuredJWT(payload).encode();
    expect(await code(tokens.verify(none, NOW))).toBe('TOKEN_INVALID');
    expect(
      await code(tokens.verify(forge({ alg: 'none', kid: 'k1', typ: 'at+jwt' }, payload), NOW)),
    ).toBe('TOKEN_INVALID');
    const other = (kid: string, key: Uint8Array) =>
      new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' }).sign(key);
    expect(await code(tokens.verify(await other('k2', secret), NOW))).toBe('TOKEN_INVALID');
    expect(await code(tokens.verify(await other('k1', randomBytes(32)), NOW))).toBe(
      'TOKEN_INVALID',
    );
    const { privateKey } = generateKeyPairSync('ed25519');
    const eddsa = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: 'at+jwt' })
      .sign(privateKey);
    expect(await code(tokens.verify(eddsa, NOW))).toBe('TOKEN_INVALID');
    const noKid = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .sign(secret);
    expect(await code(tokens.verify(noKid, NOW))).toBe('TOKEN_INVALID');
  });

  it('rejects wrong issuer, audience, type, missing sid and future iat', async () => {
    const tokens = new AccessTokens(options);
    const base = {
      sub: 'u',
      sid: 's',
      jti: 'j',
      iss: options.issuer,
      aud: options.audience,
      iat: NOW / 1000,
      exp: NOW / 1000 + 60,
    };
    const sign = (payload: Record<string, unknown>, typ = 'at+jwt') =>
      new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: 'k1', typ }).sign(secret);
    expect(await code(tokens.verify(await sign(base), NOW))).toBe('resolved');
    expect(await code(tokens.verify(await sign({ ...base, iss: 'evil' }), NOW))).toBe(
      'TOKEN_INVALID',
    );
    expect(await code(tokens.verify(await sign({ ...base, aud: 'other' }), NOW))).toBe(
      'TOKEN_INVALID',
    );
    expect(await code(tokens.verify(await sign(base, 'JWT'), NOW))).toBe('TOKEN_INVALID');
    const { sid: _sid, ...withoutSid } = base;
    expect(await code(tokens.verify(await sign(withoutSid), NOW))).toBe('TOKEN_INVALID');
    expect(await code(tokens.verify(await sign({ ...base, iat: NOW / 1000 + 3_600 }), NOW))).toBe(
      'TOKEN_INVALID',
    );
  });

  it('rejects malformed and oversized input without parsing it', async () => {
    const tokens = new AccessTokens(options);
    for (const bad of ['', 'abc', 'a.b.c', '...', 'x'.repeat(5_000), 42 as unknown as string]) {
      expect(await code(tokens.verify(bad, NOW))).toBe('TOKEN_INVALID');
    }
  });

  it('reports expiry separately, after the tolerance', async () => {
    const tokens = new AccessTokens({ ...options, accessTtlMs: 60_000, clockToleranceMs: 0 });
    const { token } = await tokens.sign('u', 's', NOW);
    expect(await code(tokens.verify(token, NOW + 59_000))).toBe('resolved');
    expect(await code(tokens.verify(token, NOW + 60_000))).toBe('TOKEN_EXPIRED');
  });

  it('verifies with a public-key-only EdDSA key but cannot sign with it', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signer = new AccessTokens({
      ...options,
      keys: [{ kid: 'ed', alg: 'EdDSA', privateKey, publicKey }],
    });
    const verifier = new AccessTokens({
      ...options,
      keys: [{ kid: 'ed', alg: 'EdDSA', publicKey }],
    });
    const { token } = await signer.sign('u', 's', NOW);
    expect((await verifier.verify(token, NOW)).sub).toBe('u');
    expect(await code(verifier.sign('u', 's', NOW))).toBe('INVALID_OPTIONS');
  });

  it('refuses unusable options', () => {
    const bad: AccessTokenOptions[] = [
      { ...options, issuer: '' },
      { ...options, keys: [] },
      { ...options, accessTtlMs: 10 },
      { ...options, clockToleranceMs: -1 },
      { ...options, keys: [{ kid: '', alg: 'HS256', secret }] },
      {
        ...options,
        keys: [
          { kid: 'a', alg: 'HS256', secret },
          { kid: 'a', alg: 'HS256', secret },
        ],
      },
      { ...options, keys: [{ kid: 'a', alg: 'RS256' as 'HS256', secret }] },
    ];
    for (const entry of bad) expect(() => new AccessTokens(entry)).toThrow(AuthError);
  });
});
