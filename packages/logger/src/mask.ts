const MASK = '***';

/**
 * Masks an email address for logs: `maskEmail('alice@example.com')` is `'a***@example.com'`.
 * Keeps the first character of the local part and the domain; the mask has a fixed length so
 * the local part's length does not leak. Anything that is not an address (no `@`, nothing
 * before or after it, not a string) becomes `'***'`: the input is never returned unmasked.
 */
export function maskEmail(email: string): string {
  if (typeof email !== 'string') return MASK;
  const value = email.trim();
  // The last `@` separates the domain: a quoted local part may itself contain `@`.
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return MASK;
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (/\s/.test(domain)) return MASK;
  // First code point, not first UTF-16 unit, so a non-BMP character is never split in half.
  const first = String.fromCodePoint(local.codePointAt(0) ?? 0x2a);
  if (first === '"') return `${MASK}@${domain}`;
  return `${first}${MASK}@${domain}`;
}
