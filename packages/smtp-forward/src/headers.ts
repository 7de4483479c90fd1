/** One header field as it appeared, including its folded continuation lines and the final CRLF. */
export interface HeaderField {
  /** Lower-cased field name. */
  key: string;
  /** The raw bytes of the field (latin1-decoded so bytes survive untouched). */
  raw: string;
}

/** Splits a header block (without the blank separator line) into fields, byte-for-byte. */
export function parseHeaders(block: Buffer): HeaderField[] {
  const text = block.toString('latin1');
  const fields: HeaderField[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\r\n', start);
    // Continuation lines start with a space or tab.
    while (end >= 0 && (text[end + 2] === ' ' || text[end + 2] === '\t'))
      end = text.indexOf('\r\n', end + 2);
    const stop = end < 0 ? text.length : end + 2;
    const raw = text.slice(start, stop);
    const colon = raw.indexOf(':');
    fields.push({
      key: colon > 0 ? raw.slice(0, colon).trim().toLowerCase() : '',
      raw: end < 0 ? `${raw}\r\n` : raw,
    });
    start = stop;
  }
  return fields;
}

/** The unfolded value of a field. */
export function fieldValue(field: HeaderField): string {
  const colon = field.raw.indexOf(':');
  return field.raw
    .slice(colon + 1)
    .replace(/\r\n[ \t]/g, ' ')
    .trim();
}

/** Joins fields back into a header block that ends with the blank line. */
export function serialiseHeaders(fields: readonly HeaderField[]): Buffer {
  return Buffer.from(`${fields.map((f) => f.raw).join('')}\r\n`, 'latin1');
}

/** Encodes a display name as an RFC 2047 word when it is not plain ASCII, or quotes it. */
export function encodeDisplayName(name: string): string {
  if (/^[\x20-\x7e]*$/.test(name)) return `"${name.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return `=?UTF-8?B?${Buffer.from(name, 'utf8').toString('base64')}?=`;
}

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f]+/g;

/**
 * Text we write into a header (an address, an authentication result), as the byte string fields
 * hold: UTF-8 bytes, one character per byte. Control characters, CR and LF among them, become one
 * space. Never `Buffer.from(text, 'latin1')`: that keeps only the low byte of each character, so
 * U+010A would become a bare LF and end the line.
 */
export function headerBytes(text: string): string {
  return Buffer.from(text.replace(CONTROLS, ' '), 'utf8').toString('latin1');
}

/** A field from a name and a value that we generated; the value goes through {@link headerBytes}. */
export function makeField(name: string, value: string): HeaderField {
  return { key: name.toLowerCase(), raw: `${name}: ${headerBytes(value)}\r\n` };
}

/** Extracts the first address and display name of a From-like value (best effort, RFC 5322 subset). */
export function parseMailbox(value: string): { name: string; address: string } | null {
  const angle = /^(.*?)<\s*([^<>\s]+@[^<>\s]+)\s*>/s.exec(value);
  if (angle !== null) {
    let name = angle[1]!.trim();
    if (name.startsWith('"') && name.endsWith('"') && name.length >= 2)
      name = name.slice(1, -1).replace(/\\(.)/g, '$1');
    return { name, address: angle[2]! };
  }
  const bare = /([^\s<>,;:"()]+@[^\s<>,;:"()]+)/.exec(value);
  return bare === null ? null : { name: '', address: bare[1]! };
}
