import { randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthError } from './errors.js';
import {
  Argon2Hasher,
  bcryptVerifier,
  nodeArgon2,
  scryptVerifier,
  type Argon2Binding,
} from './hasher.js';

const fast = { memoryCost: 1024, timeCost: 1 } as const;

describe('Argon2Hasher', () => {
  it('hashes with argon2id at the OWASP parameters by default', async () => {
    const hasher = new Argon2Hasher();
    const hash = await hasher.hash('a perfectly fine password');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await hasher.verify(hash, 'a perfectly fine password')).toBe(true);
    expect(await hasher.verify(hash, 'a perfectly fine passwore')).toBe(false);
    expect(hasher.needsRehash(hash)).toBe(false);
  });

  it('salts every hash and normalises with NFKC', async () => {
    const hasher = new Argon2Hasher(fast);
    const [first, second] = await Promise.all([
      hasher.hash('ﬁne password'),
      hasher.hash('ﬁne password'),
    ]);
    expect(first).not.toBe(second);
    expect(await hasher.verify(first, 'fine password')).toBe(true);
  });

  it('asks for a rehash when parameters, scheme or pepper change', async () => {
    const old = new Argon2Hasher(fast);
    const hash = await old.hash('password for rehash');
    expect(new Argon2Hasher({ ...fast, timeCost: 2 }).needsRehash(hash)).toBe(true);
    expect(
      new Argon2Hasher({ ...fast, pepper: { id: 'p1', secret: 'sixteen bytes!!!' } }).needsRehash(
        hash,
      ),
    ).toBe(true);
    expect(old.needsRehash('$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234')).toBe(
      true,
    );
    expect(old.needsRehash('$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g')).toBe(true);
    expect(old.needsRehash('$argon2id$garbage')).toBe(true);
    expect(old.needsRehash(hash.replace('v=19', 'v=16'))).toBe(true);
    expect(new Argon2Hasher({ ...fast, parallelism: 2 }).needsRehash(hash)).toBe(true);
    expect(new Argon2Hasher({ ...fast, memoryCost: 2048 }).needsRehash(hash)).toBe(true);
  });

  it('peppers hashes with a named key and verifies hashes of earlier peppers', async () => {
    const first = { id: 'p1', secret: randomBytes(32) };
    const second = { id: 'p2', secret: 'a second pepper, 16+ bytes' };
    const before = new Argon2Hasher({ ...fast, pepper: first });
    const hash = await before.hash('peppered password');
    expect(hash).toMatch(/^\$pepper=p1\$argon2id\$/);
    expect(
      await new Argon2Hasher(fast).verify(hash.replace('$pepper=p1', ''), 'peppered password'),
    ).toBe(false);
    const after = new Argon2Hasher({ ...fast, pepper: second, previousPeppers: [first] });
    expect(await after.verify(hash, 'peppered password')).toBe(true);
    expect(after.needsRehash(hash)).toBe(true);
    const rehashed = await after.hash('peppered password');
    expect(after.needsRehash(rehashed)).toBe(false);
    await expect(
      new Argon2Hasher({ ...fast, pepper: second }).verify(hash, 'peppered password'),
    ).rejects.toSatisfy(
      (error: unknown) => AuthError.isInstance(error) && error.code === 'INVALID_OPTIONS',
    );
  });

  it('returns false for malformed, oversized and unknown hashes instead of throwing', async () => {
    const hasher = new Argon2Hasher(fast);
    expect(await hasher.verify('$argon2id$v=19$m=nope', 'password')).toBe(false);
    expect(await hasher.verify(`$argon2id$${'a'.repeat(600)}`, 'password')).toBe(false);
    expect(await hasher.verify('plaintext-password', 'plaintext-password')).toBe(false);
  });

  it('refuses unusable options', () => {
    for (const options of [
      { memoryCost: 10 },
      { timeCost: 0 },
      { parallelism: 0 },
      { maxConcurrency: 0 },
      { pepper: { id: 'bad id', secret: 'sixteen bytes!!!' } },
      { pepper: { id: 'p', secret: 'short' } },
    ]) {
      expect(() => new Argon2Hasher(options)).toThrow(AuthError);
    }
  });

  it('never runs more hashes at once than maxConcurrency', async () => {
    const inner = nodeArgon2();
    let running = 0;
    let peak = 0;
    const counting: Argon2Binding = {
      async hash(password, parameters) {
        running += 1;
        peak = Math.max(peak, running);
        try {
          return await inner.hash(password, parameters);
        } finally {
          running -= 1;
        }
      },
      verify: (phc, password, secret) => inner.verify(phc, password, secret),
    };
    const hasher = new Argon2Hasher({ ...fast, binding: counting, maxConcurrency: 2 });
    await Promise.all(Array.from({ length: 8 }, (_, index) => hasher.hash(`concurrent ${index}`)));
    expect(peak).toBe(2);
    expect(running).toBe(0);
  });

  it('runs every hash even when the concurrency limit queues them', async () => {
    const hasher = new Argon2Hasher({ ...fast, maxConcurrency: 1 });
    const hashes = await Promise.all(
      Array.from({ length: 5 }, (_, index) => hasher.hash(`password number ${index}`)),
    );
    const checks = await Promise.all(
      hashes.map((hash, index) => hasher.verify(hash, `password number ${index}`)),
    );
    expect(checks).toEqual([true, true, true, true, true]);
  });
});

describe('legacy verifiers', () => {
  it('verifies scrypt hashes and caps their cost', async () => {
    const salt = randomBytes(16);
    const key = scryptSync('legacy password', salt, 32, { N: 2 ** 10, r: 8, p: 1 });
    const hash = `$scrypt$ln=10,r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
    const hasher = new Argon2Hasher(fast);
    expect(await hasher.verify(hash, 'legacy password')).toBe(true);
    expect(await hasher.verify(hash, 'legacy passworD')).toBe(false);
    expect(hasher.needsRehash(hash)).toBe(true);
    const verifier = scryptVerifier();
    expect(await verifier.verify(hash.replace('ln=10', 'ln=30'), 'legacy password')).toBe(false);
    expect(await verifier.verify('$scrypt$broken', 'legacy password')).toBe(false);
    expect(
      await verifier.verify(
        `$scrypt$ln=10,r=8,p=1$${salt.toString('base64')}$AAAA`,
        'legacy password',
      ),
    ).toBe(false);
  });

  it('delegates bcrypt hashes to the supplied compare function', async () => {
    const seen: Array<[string, string]> = [];
    const bcrypt = bcryptVerifier((password, hash) => {
      seen.push([password, hash]);
      return Promise.resolve(password === 'legacy bcrypt');
    });
    const hash = '$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234';
    expect(bcrypt.canVerify(hash)).toBe(true);
    expect(bcrypt.canVerify('$2b$10$short')).toBe(false);
    const hasher = new Argon2Hasher({ ...fast, legacy: [bcrypt] });
    expect(await hasher.verify(hash, 'legacy bcrypt')).toBe(true);
    expect(await hasher.verify(hash, 'other')).toBe(false);
    expect(seen[0]).toEqual(['legacy bcrypt', hash]);
    const throwing = bcryptVerifier(() => Promise.reject(new Error('bad hash')));
    expect(await throwing.verify(hash, 'x')).toBe(false);
  });
});
