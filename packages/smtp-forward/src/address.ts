/** An address split at its last `@`, with the domain lower-cased. */
export interface ParsedAddress {
  local: string;
  domain: string;
}

// Anything that could end a header line, close an angle-address or start a comment is refused,
// so an address can be written into a header without enabling header injection.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\s<>()\\,;:"[\]\u0000-\u001f\u007f]/u;

/** Splits and checks an address; returns null when it is not a plain mailbox we can safely use. */
export function parseAddress(address: string): ParsedAddress | null {
  if (address.length === 0 || address.length > 512) return null;
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  if (local.length > 256 || FORBIDDEN.test(local) || FORBIDDEN.test(domain) || domain.includes('@'))
    return null;
  if (
    !/^[\p{L}\p{N}.-]+$/u.test(domain) ||
    domain.startsWith('.') ||
    domain.endsWith('.') ||
    domain.includes('..')
  ) {
    return null;
  }
  return { local, domain };
}

/** Masks an address for logs: `alice@example.com` becomes `a***@example.com`. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address.length > 0 ? `${address.slice(0, 1)}***` : '';
  const local = address.slice(0, at);
  return `${local.slice(0, 1)}***@${address.slice(at + 1)}`;
}
