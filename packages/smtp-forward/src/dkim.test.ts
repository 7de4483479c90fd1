import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { dkimVerify } from 'mailauth';
import { describe, expect, it } from 'vitest';
import { dkimSignFields, relaxedBodyHash, relaxedHeader } from './dkim.js';
import { parseHeaders } from './headers.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const records: Record<string, string> = {
  'rsa._domainkey.fwd.test': `v=DKIM1; k=rsa; p=${rsa.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
  'ed._domainkey.fwd.test': `v=DKIM1; k=ed25519; p=${ed.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64')}`,
};
const resolver = (name: string): Promise<string[][]> => {
  const value = records[name];
  return value === undefined
    ? Promise.reject(Object.assign(new Error('nf'), { code: 'ENOTFOUND' }))
    : Promise.resolve([[value]]);
};

async function signAndVerify(
  header: string,
  bodyChunks: string[],
  kind: 'rsa' | 'ed',
): Promise<string> {
  const headerBuffer = Buffer.from(header, 'latin1');
  const bodyHash = await relaxedBodyHash(
    Readable.from(bodyChunks.map((c) => Buffer.from(c, 'latin1'))),
  );
  const signature = await dkimSignFields(parseHeaders(headerBuffer), bodyHash, {
    domain: 'fwd.test',
    selector: kind,
    privateKey: (kind === 'rsa' ? rsa : ed).privateKey
      .export({ type: 'pkcs8', format: 'pem' })
      .toString(),
    algorithm: kind === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
    timestamp: Date.UTC(2026, 10, 24),
  });
  const message = Buffer.concat([
    Buffer.from(signature, 'latin1'),
    headerBuffer,
    Buffer.from(bodyChunks.join(''), 'latin1'),
  ]);
  const result = await dkimVerify(message, { resolver, curTime: new Date(Date.UTC(2026, 10, 24)) });
  return result.results[0]?.status.result ?? 'none';
}

describe('DKIM signing (verified by mailauth)', () => {
  it('canonicalizes headers the relaxed way', () => {
    expect(relaxedHeader('Subject:  Hello \t world  \r\n  again \r\n')).toBe(
      'subject:Hello world again',
    );
  });

  it('canonicalizes any field as RFC 6376 3.4.2 spells it out, fast path or not (property)', () => {
    // The rules one by one, as a reference: unfold, collapse whitespace, trim both ends.
    const reference = (raw: string): string => {
      const colon = raw.indexOf(':');
      const value = raw
        .slice(colon + 1)
        .replace(/\r\n(?=[ \t])/g, '')
        .replace(/[ \t]+/g, ' ')
        .replace(/[ \t\r\n]+$/, '')
        .replace(/^ /, '');
      return `${raw.slice(0, colon).trim().toLowerCase()}:${value}`;
    };
    const piece = fc.constantFrom(' ', '  ', '\t', '\r\n ', '\r\n\t', 'a', 'Bc', '=', ';', '\r\n');
    fc.assert(
      fc.property(
        fc.constantFrom('Subject', 'X-Y ', 'FROM'),
        fc.array(piece, { maxLength: 12 }),
        (name, parts) => {
          const raw = `${name}:${parts.join('')}`;
          expect(relaxedHeader(raw)).toBe(reference(raw));
        },
      ),
      { numRuns: 2000 },
    );
    expect(relaxedHeader('Subject: plain value')).toBe('subject:plain value');
    expect(relaxedHeader('Subject:plain value ')).toBe('subject:plain value');
  });

  it('signs with RSA and Ed25519, and a changed body fails', async () => {
    const header =
      'From: "A" <a@fwd.test>\r\nTo: b@dest.test\r\nSubject:  folded\r\n  subject\r\nDate: Tue, 24 Nov 2026 00:00:00 +0000\r\n\r\n';
    expect(await signAndVerify(header, ['Hello  \r\n', '\r\n\r\n'], 'rsa')).toBe('pass');
    expect(await signAndVerify(header, ['Hello\r\n'], 'ed')).toBe('pass');
    expect(await signAndVerify(header, [], 'rsa')).toBe('pass');
  });

  it('produces signatures mailauth accepts for any body and chunking (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.stringMatching(/^[a \t\r\n.é]{0,20}$/), { maxLength: 6 }),
        async (parts) => {
          // Bodies reach the signer CRLF-normalised by the intake, and SMTP DATA always ends a body with CRLF.
          const joined = parts.join('').replace(/\r\n|\r|\n/g, '\r\n');
          const body = joined === '' || joined.endsWith('\r\n') ? joined : `${joined}\r\n`;
          const cut = Math.floor(body.length / 2);
          const verdict = await signAndVerify(
            'From: a@fwd.test\r\nSubject: p\r\n\r\n',
            [body.slice(0, cut), body.slice(cut)],
            'rsa',
          );
          expect(verdict).toBe('pass');
        },
      ),
      { numRuns: 100 },
    );
  });
});
