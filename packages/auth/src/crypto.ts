import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/** `bytes` random bytes from the CSPRNG, base64url. */
export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** SHA-256 of a string, base64url: how tokens are kept at rest. */
export function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

/** Compares two strings in time that depends only on their length. */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  // Hash both so lengths match and the comparison leaks nothing about the prefix.
  const l = createHash('sha256').update(left).digest();
  const r = createHash('sha256').update(right).digest();
  return timingSafeEqual(l, r);
}

function sealKey(secret: string): Buffer {
  // Independent of sha256(secret) (the at-rest hash), so the store can never derive it.
  return createHmac('sha256', secret).update('postern-auth successor v1').digest();
}

/** Encrypts `plaintext` with AES-256-GCM under a key only the holder of `secret` can derive. */
export function seal(secret: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(secret), iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** Reverses `seal`; null if the key is wrong or the box was altered. */
export function unseal(secret: string, sealed: string): string | null {
  try {
    const box = Buffer.from(sealed, 'base64url');
    if (box.length < 29) return null;
    const decipher = createDecipheriv('aes-256-gcm', sealKey(secret), box.subarray(0, 12));
    decipher.setAuthTag(box.subarray(box.length - 16));
    return Buffer.concat([
      decipher.update(box.subarray(12, box.length - 16)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    return null;
  }
}
