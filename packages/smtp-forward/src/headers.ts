import addressparser from 'nodemailer/lib/addressparser';
import { encodeWord } from 'nodemailer/lib/mime-funcs';

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f]+/g;

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

/** Encodes a display name: quoted when it is printable ASCII, else RFC 2047 words of at most 52 characters each. */
export function encodeDisplayName(name: string): string {
  const clean = name.replace(CONTROLS, ' ');
  if (/^[\x20-\x7e]*$/.test(clean)) return `"${clean.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return encodeWord(clean, 'B', 52);
}

/**
 * Text we write into a header (an address, an authentication result), as the byte string fields
 * hold: UTF-8 bytes, one character per byte. Control characters, CR and LF among them, become one
 * space. Never `Buffer.from(text, 'latin1')`: that keeps only the low byte of each character, so
 * U+010A would become a bare LF and end the line.
 */
export function headerBytes(text: string): string {
  return Buffer.from(text.replace(CONTROLS, ' '), 'utf8').toString('latin1');
}

/** Longest line we write before folding (RFC 5322 2.1.1 recommends 78). */
const FOLD_AT = 78;

/** Folds a header line (no CRLF) at spaces so that lines stay within {@link FOLD_AT} where words allow. */
export function foldLine(line: string): string {
  if (line.length <= FOLD_AT) return line;
  let out = '';
  let current = '';
  for (const word of line.split(' ')) {
    if (current === '') current = word;
    else if (current.length + 1 + word.length > FOLD_AT && current.trim() !== '') {
      out += `${current}\r\n`;
      current = ` ${word}`;
    } else current += ` ${word}`;
  }
  return out + current;
}

/** A field from a name and a value that we generated: through {@link headerBytes}, then folded. */
export function makeField(name: string, value: string): HeaderField {
  return { key: name.toLowerCase(), raw: `${foldLine(`${name}: ${headerBytes(value)}`)}\r\n` };
}

const ENCODED_WORD = /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=/g;

/**
 * Decodes RFC 2047 encoded-words (`=?UTF-8?B?...?=`, `=?iso-8859-1?Q?...?=`); the whitespace
 * between two of them goes (RFC 2047 6.2). A word in a charset Node cannot decode stays as written.
 */
export function decodeWords(text: string): string {
  return text
    .replace(/(\?=)[ \t]+(?==\?)/g, '$1')
    .replace(ENCODED_WORD, (word, charset: string, encoding: string, data: string) => {
      const bytes =
        encoding.toUpperCase() === 'B'
          ? Buffer.from(data, 'base64')
          : Buffer.from(
              data
                .replace(/_/g, ' ')
                .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) =>
                  String.fromCharCode(parseInt(hex, 16)),
                ),
              'latin1',
            );
      try {
        return new TextDecoder(charset).decode(bytes);
      } catch {
        return word;
      }
    });
}

/**
 * The first mailbox of a From-like value, given as the field's raw bytes (a latin1 string): its
 * address, and its display name with encoded-words decoded. Quoted strings, comments and groups
 * are parsed as RFC 5322 says (nodemailer's address parser), so an address inside a quoted name
 * or a comment is never taken for the mailbox.
 */
export function parseMailbox(value: string): { name: string; address: string } | null {
  const text = Buffer.from(value, 'latin1').toString('utf8');
  const first = addressparser(text, { flatten: true }).find((entry) => entry.address.includes('@'));
  return first === undefined ? null : { name: decodeWords(first.name), address: first.address };
}
