import { createHash, createPrivateKey, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { HeaderField } from './headers.js';
import { foldLine, headerBytes } from './headers.js';

/** Header fields signed when present, and each oversigned once (so none can be added unnoticed). */
const SIGNED = [
  'from',
  'reply-to',
  'subject',
  'date',
  'to',
  'cc',
  'message-id',
  'in-reply-to',
  'references',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'list-id',
  'list-unsubscribe',
];

const keys = new Map<string, KeyObject>();

// Parsing a PEM key costs about 1 ms (RSA): keys rarely change, so each is parsed once.
function keyOf(pem: string): KeyObject {
  let key = keys.get(pem);
  if (key === undefined) {
    key = createPrivateKey(pem);
    if (keys.size > 100) keys.clear();
    keys.set(pem, key);
  }
  return key;
}

// A value with none of these is already relaxed but for one leading and one trailing space.
const NOT_RELAXED = /[\r\n\t]| {2}/;

/** RFC 6376 relaxed header canonicalization of one field. */
export function relaxedHeader(raw: string): string {
  const colon = raw.indexOf(':');
  const name = raw.slice(0, colon).trim().toLowerCase();
  let value = raw.slice(colon + 1);
  if (NOT_RELAXED.test(value)) {
    value = value
      .replace(/\r\n(?=[ \t])/g, '')
      .replace(/[ \t]+/g, ' ')
      .replace(/[ \t\r\n]+$/, '')
      .replace(/^ /, '');
  } else {
    // Most fields: one space after the colon, nothing to unfold or collapse.
    if (value.endsWith(' ')) value = value.slice(0, -1);
    if (value.startsWith(' ')) value = value.slice(1);
  }
  return `${name}:${value}`;
}

const LF = 10;
const WSP_RUN = /[ \t]+/g;
const SPACE_CRLF = / \r\n/g;

/**
 * RFC 6376 relaxed body canonicalization, streamed (or from one Buffer): returns the base64 SHA-256 body hash.
 * Works on whole runs of complete lines (two regular expressions per chunk, not per line);
 * empty lines are held back until content follows them, since trailing ones are not hashed.
 */
export async function relaxedBodyHash(body: Readable | Buffer): Promise<string> {
  const hash = createHash('sha256');
  let partial = '';
  let blankLines = 0;
  const lines = (text: string): void => {
    // `text` is complete lines, each ending in CRLF.
    const canonical = text.replace(WSP_RUN, ' ').replace(SPACE_CRLF, '\r\n');
    let end = canonical.length;
    let trailing = 0;
    // A CRLF right after another line break (or at the start) is an empty line.
    while (end >= 2 && (end === 2 || canonical.charCodeAt(end - 3) === LF)) {
      end -= 2;
      trailing += 1;
    }
    if (end > 0) {
      if (blankLines > 0) hash.update('\r\n'.repeat(blankLines));
      hash.update(end === canonical.length ? canonical : canonical.slice(0, end), 'latin1');
      blankLines = trailing;
    } else {
      blankLines += trailing;
    }
  };
  // A body held in memory is hashed in one go, without a stream.
  for await (const chunk of Buffer.isBuffer(body) ? [body] : body) {
    const text = partial + (chunk as Buffer).toString('latin1');
    const cut = text.lastIndexOf('\r\n');
    if (cut < 0) {
      partial = text;
      continue;
    }
    lines(text.slice(0, cut + 2));
    partial = text.slice(cut + 2);
  }
  if (partial !== '') lines(`${partial}\r\n`);
  return hash.digest('base64');
}

/** Key, identity and time of one signature. */
export interface SignOptions {
  domain: string;
  selector: string;
  privateKey: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  timestamp: number;
}

/** Folds base64 into lines of 72 characters, continued with CRLF and two spaces. */
function fold(text: string): string {
  let out = text.slice(0, 72);
  for (let at = 72; at < text.length; at += 72) out += `\r\n  ${text.slice(at, at + 72)}`;
  return out;
}

/**
 * Signs on libuv's thread pool (the callback form of `crypto.sign`): an RSA-2048 signature costs
 * about 0.3 ms of CPU, which would otherwise stall every session on the event loop.
 */
function signData(data: Buffer, options: SignOptions): Promise<string> {
  const key = keyOf(options.privateKey);
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, signature: Buffer): void => {
      if (error !== null) reject(error);
      else resolve(fold(signature.toString('base64')));
    };
    if (options.algorithm === 'ed25519-sha256')
      sign(null, createHash('sha256').update(data).digest(), key, done);
    else sign('sha256', data, key, done);
  });
}

const SIGNED_KEYS = new Set(SIGNED);

/** The signed fields of one header: their names for `h=` and their relaxed canonical text. */
interface SignedHeaders {
  names: string;
  canonical: string;
}

// The DKIM signature and the ARC message signature of one message sign the same fields: keyed by
// the parsed field list, which no caller changes once it has been signed.
const signedCache = new WeakMap<readonly HeaderField[], SignedHeaders>();

function signedHeaders(fields: readonly HeaderField[]): SignedHeaders {
  let signed = signedCache.get(fields);
  if (signed !== undefined) return signed;
  const byKey = new Map<string, HeaderField[]>();
  for (const field of fields) {
    if (!SIGNED_KEYS.has(field.key)) continue;
    const instances = byKey.get(field.key);
    if (instances === undefined) byKey.set(field.key, [field]);
    else instances.push(field);
  }
  const names: string[] = [];
  let canonical = '';
  // The last instance of a field is signed first (RFC 6376 5.4.2).
  for (const name of SIGNED) {
    const instances = byKey.get(name);
    if (instances === undefined) continue;
    for (let i = instances.length - 1; i >= 0; i -= 1) {
      names.push(name);
      canonical += `${relaxedHeader(instances[i]!.raw)}\r\n`;
    }
  }
  // Over-sign every signed field, present or not: a From, Subject, Reply-To or List-Unsubscribe
  // added to the message later breaks the signature instead of being shown to the reader.
  names.push(...SIGNED);
  signed = { names: foldNames(names), canonical };
  signedCache.set(fields, signed);
  return signed;
}

/** The `h=` list, folded after a colon every few names so no line of the signature runs long. */
function foldNames(names: readonly string[]): string {
  let out = names[0] ?? '';
  let line = out.length;
  for (const name of names.slice(1)) {
    const wrap = line + 1 + name.length > 60;
    out += wrap ? `:\r\n ${name}` : `:${name}`;
    line = wrap ? name.length : line + 1 + name.length;
  }
  return out;
}

/**
 * Signs with relaxed/relaxed canonicalization; returns the DKIM-Signature field (with CRLF), or
 * with `arcInstance` the ARC-Message-Signature of that instance (RFC 8617: `i=` instead of `v=`).
 */
export async function dkimSignFields(
  fields: readonly HeaderField[],
  bodyHash: string,
  options: SignOptions,
  arcInstance?: number,
): Promise<string> {
  const { names, canonical } = signedHeaders(fields);
  const name = arcInstance === undefined ? 'DKIM-Signature' : 'ARC-Message-Signature';
  const version = arcInstance === undefined ? 'v=1' : `i=${arcInstance}`;
  const head = `${version}; a=${options.algorithm}; c=relaxed/relaxed; d=${options.domain}; s=${options.selector};\r\n t=${Math.floor(options.timestamp / 1000)}; h=${names};\r\n bh=${bodyHash};\r\n b=`;
  const data = Buffer.from(canonical + relaxedHeader(`${name}: ${head}`), 'latin1');
  return `${name}: ${head}${await signData(data, options)}\r\n`;
}

/** The `i=` tag of an ARC field, wherever it stands in the tag list (RFC 8617 puts no order on tags). */
function instanceOf(raw: string): number {
  const value = raw.slice(raw.indexOf(':') + 1);
  const match = /(?:^|;)\s*i\s*=\s*(\d+)\s*(?:;|$)/.exec(value);
  return match === null ? 0 : Number(match[1]);
}

/**
 * Adds ARC set `i` (RFC 8617) to a message whose header fields are `fields` (our trace headers
 * included) and whose body hashes to `bodyHash`. `cv` is the validation result of the chain so far
 * (`none` for the first set, `fail` for a chain that did not validate). Returns the three fields to prepend: Seal, Message-Signature, Results.
 */
export async function arcSealFields(
  fields: readonly HeaderField[],
  bodyHash: string,
  chain: { instance: number; cv: 'none' | 'pass' | 'fail'; authResults: string },
  options: SignOptions,
): Promise<string> {
  const aar = `${foldLine(`ARC-Authentication-Results: i=${chain.instance}; ${headerBytes(chain.authResults)}`)}\r\n`;
  const ams = await dkimSignFields(fields, bodyHash, options, chain.instance);
  // The seal covers every earlier ARC set, oldest first, then this one (RFC 8617 5.1.1); after a
  // failed chain, this one alone, as if it were the only set (5.1.2).
  const byInstance = (key: string, instance: number): HeaderField | undefined =>
    fields.find((f) => f.key === key && instanceOf(f.raw) === instance);
  const canonical: string[] = [];
  for (let i = 1; chain.cv !== 'fail' && i < chain.instance; i += 1) {
    for (const key of ['arc-authentication-results', 'arc-message-signature', 'arc-seal']) {
      const field = byInstance(key, i);
      if (field !== undefined) canonical.push(`${relaxedHeader(field.raw)}\r\n`);
    }
  }
  canonical.push(`${relaxedHeader(aar)}\r\n`, `${relaxedHeader(ams)}\r\n`);
  const head = `i=${chain.instance}; a=${options.algorithm}; t=${Math.floor(options.timestamp / 1000)}; cv=${chain.cv};\r\n d=${options.domain}; s=${options.selector}; b=`;
  const data = Buffer.from(canonical.join('') + relaxedHeader(`ARC-Seal: ${head}`), 'latin1');
  return `ARC-Seal: ${head}${await signData(data, options)}\r\n${ams}${aar}`;
}
