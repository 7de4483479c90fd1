import { generateKeyPairSync } from 'node:crypto';
import { authenticate } from 'mailauth';

/** A test DNS: answers TXT from a map and ENOTFOUND for everything else, like node:dns. */
export function testDns(
  records: Record<string, string>,
): (name: string, rrtype: string) => Promise<string[][]> {
  return (name, rrtype) => {
    const value = records[`${rrtype.toUpperCase()} ${name.toLowerCase()}`];
    if (value === undefined)
      return Promise.reject(
        Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' }),
      );
    // Long TXT values are split into 255-byte strings, as DNS does.
    const parts: string[] = [];
    for (let i = 0; i < value.length; i += 255) parts.push(value.slice(i, i + 255));
    return Promise.resolve([parts]);
  };
}

/** A DKIM key pair generated now, with its DNS record. */
export function dkimKey(kind: 'rsa' | 'ed25519'): { privateKey: string; record: string } {
  if (kind === 'rsa') {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    return {
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      record: `v=DKIM1; k=rsa; p=${der.toString('base64')}`,
    };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    record: `v=DKIM1; k=ed25519; p=${raw.toString('base64')}`,
  };
}

/** Checks a relayed message as the receiving MTA would (SPF, DKIM, DMARC, ARC), against `dns`. */
export function asReceiver(
  message: { data: Buffer; from: string },
  dns: ReturnType<typeof testDns>,
): ReturnType<typeof authenticate> {
  return authenticate(message.data, {
    ip: '127.0.0.1',
    helo: 'fwd.test',
    sender: message.from,
    mta: 'receiver.test',
    resolver: dns,
    disableBimi: true,
  });
}
