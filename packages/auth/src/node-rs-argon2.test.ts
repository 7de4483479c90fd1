import { describe, expect, it } from 'vitest';
import { Argon2Hasher, nodeArgon2 } from './hasher.js';
import { nodeRsArgon2 } from './node-rs-argon2.js';

const fast = { memoryCost: 1024, timeCost: 1 } as const;
const pepper = { id: 'p1', secret: 'a pepper of sixteen+ bytes' };

describe('nodeRsArgon2 binding', () => {
  it('writes hashes the default binding reads, and reads the default binding hashes, peppered or not', async () => {
    const rust = new Argon2Hasher({ ...fast, binding: nodeRsArgon2() });
    const c = new Argon2Hasher({ ...fast, binding: nodeArgon2() });
    const fromRust = await rust.hash('interchangeable password');
    const fromC = await c.hash('interchangeable password');
    expect(fromRust).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    expect(await c.verify(fromRust, 'interchangeable password')).toBe(true);
    expect(await rust.verify(fromC, 'interchangeable password')).toBe(true);
    expect(await rust.verify(fromC, 'interchangeable passworD')).toBe(false);
    expect(rust.needsRehash(fromC)).toBe(false);

    const rustPeppered = new Argon2Hasher({ ...fast, binding: nodeRsArgon2(), pepper });
    const cPeppered = new Argon2Hasher({ ...fast, pepper });
    expect(await cPeppered.verify(await rustPeppered.hash('peppered'), 'peppered')).toBe(true);
    expect(await rustPeppered.verify(await cPeppered.hash('peppered'), 'peppered')).toBe(true);
  });

  it('hashes at the default OWASP parameters', async () => {
    const hash = await new Argon2Hasher({ binding: nodeRsArgon2() }).hash('default parameters');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});
