import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseAddress } from './address.js';
import { SmtpForwardError } from './errors.js';
import type { Clock } from './ports.js';
import { systemClock } from './ports.js';

/** Options of {@link Srs}. */
export interface SrsOptions {
  /** HMAC secrets, newest first: addresses are signed with the first and accepted with any. Each at least 16 characters. */
  secrets: readonly string[];
  /** The domain SRS addresses are written under (usually the forwarding domain). */
  domain: string;
  /** Days an SRS0 address stays valid. Default: 21. */
  maxAgeDays?: number;
  /** Characters of the hash kept in the address. Default: 8 (40 bits of base32) for `postern`, 4 for `postsrsd`. */
  hashLength?: number;
  /**
   * Hash format. `postern` (default): HMAC-SHA256, base32, fields joined with `=`.
   * `postsrsd`: HMAC-SHA1, base64, as postsrsd and libsrs2 make it, so addresses interoperate
   * with a Postfix + postsrsd setup sharing the same secret (about 21 bits at the default length:
   * base64 compared without case, as libsrs2 does).
   */
  scheme?: 'postern' | 'postsrsd';
  /** Time source. Default: the system clock. */
  clock?: Clock;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const DAY_MS = 86_400_000;
// Two base32 characters: the day number modulo 1024, as libsrs2 and postsrsd do.
const TIMESTAMP_CYCLE = 1024;
// Signed hashes kept per Srs instance: a busy sender is signed once a day, not once a message.
const SIGNED_CACHE_SIZE = 1024;

function base32(bytes: Uint8Array, length: number): string {
  let output = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && output.length < length) {
      output += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
    if (output.length >= length) break;
  }
  return output;
}

/**
 * The Sender Rewriting Scheme: rewrites an envelope sender so SPF passes for the forwarder,
 * and reverses bounces to the original sender. Forged or expired addresses are refused.
 */
export class Srs {
  readonly #secrets: readonly string[];
  readonly #domain: string;
  readonly #maxAgeDays: number;
  readonly #hashLength: number;
  readonly #clock: Clock;
  readonly #scheme: 'postern' | 'postsrsd';
  readonly #signed = new Map<string, string>();

  constructor(options: SrsOptions) {
    if (options.secrets.length === 0) {
      throw new SmtpForwardError('INVALID_OPTIONS', 'srs.secrets needs at least one secret');
    }
    if (options.secrets.some((secret) => secret.length < 16)) {
      throw new SmtpForwardError(
        'INVALID_OPTIONS',
        'every srs secret must be at least 16 characters',
      );
    }
    this.#scheme = options.scheme ?? 'postern';
    const hashLength = options.hashLength ?? (this.#scheme === 'postsrsd' ? 4 : 8);
    if (!Number.isInteger(hashLength) || hashLength < 4 || hashLength > 32) {
      throw new SmtpForwardError(
        'INVALID_OPTIONS',
        'srs.hashLength must be an integer from 4 to 32',
      );
    }
    this.#secrets = [...options.secrets];
    this.#domain = options.domain.toLowerCase();
    this.#maxAgeDays = options.maxAgeDays ?? 21;
    this.#hashLength = hashLength;
    this.#clock = options.clock ?? systemClock;
  }

  /** True when the address is an SRS0 or SRS1 address (any domain). */
  static isSrs(address: string): boolean {
    return /^srs[01][=+-]/i.test(address);
  }

  /** Rewrites `sender` as an address under our domain. Addresses already under our domain are kept. */
  forward(sender: string): string {
    const parsed = parseAddress(sender);
    if (parsed === null) throw new SmtpForwardError('SRS_INVALID', 'sender is not a valid address');
    if (parsed.domain === this.#domain) return sender;
    const { local, domain } = parsed;
    if (/^srs0[=+-]/i.test(local)) {
      // SRS0=HHH=TT=orig=user@hop1 -> SRS1=HHH=hop1==HHH=TT=orig=user@us
      return this.#srs1(domain, local.slice(5));
    }
    const srs1 = /^srs1[=+-][^=]+=([^=]+)==(.+)$/i.exec(local);
    if (srs1 !== null) {
      // SRS1=HHH=hop1==... keeps the first hop so the chain never grows.
      return this.#srs1(srs1[1]!, srs1[2]!);
    }
    if (/^srs1[=+-]/i.test(local))
      throw new SmtpForwardError('SRS_INVALID', 'malformed SRS1 sender');
    const timestamp = this.#timestamp(this.#clock.now());
    const hash = this.#sign([timestamp, domain, local]);
    return `SRS0=${hash}=${timestamp}=${domain}=${local}@${this.#domain}`;
  }

  /**
   * Reverses an SRS address under our domain to the address it stands for.
   * Throws SmtpForwardError `SRS_INVALID`, `SRS_FORGED` (bad hash) or `SRS_EXPIRED`.
   */
  reverse(address: string): string {
    const parsed = parseAddress(address);
    if (parsed === null || parsed.domain !== this.#domain) {
      throw new SmtpForwardError('SRS_INVALID', 'not an SRS address of this domain');
    }
    const local = parsed.local;
    const srs0 = /^srs0[=+-]([^=]+)=([^=]{2})=([^=]+)=(.+)$/i.exec(local);
    if (srs0 !== null) {
      const [, hash, timestamp, domain, user] = srs0 as unknown as [
        string,
        string,
        string,
        string,
        string,
      ];
      if (!this.#verify(hash, [timestamp, domain, user])) {
        throw new SmtpForwardError('SRS_FORGED', 'SRS hash does not match');
      }
      if (!this.#fresh(timestamp))
        throw new SmtpForwardError('SRS_EXPIRED', 'SRS address has expired');
      return `${user}@${domain.toLowerCase()}`;
    }
    const srs1 = /^srs1[=+-]([^=]+)=([^=]+)==(.+)$/i.exec(local);
    if (srs1 !== null) {
      const [, hash, firstHop, rest] = srs1 as unknown as [string, string, string, string];
      if (!this.#verify(hash, [firstHop, `=${rest}`]))
        throw new SmtpForwardError('SRS_FORGED', 'SRS hash does not match');
      return `SRS0=${rest}@${firstHop}`;
    }
    throw new SmtpForwardError('SRS_INVALID', 'malformed SRS address');
  }

  #srs1(firstHop: string, rest: string): string {
    const hash = this.#sign([firstHop, `=${rest}`]);
    return `SRS1=${hash}=${firstHop}==${rest}@${this.#domain}`;
  }

  /** The hash of `fields` with the newest secret, from a small cache (the oldest entry goes first). */
  #sign(fields: readonly string[]): string {
    const key = fields.join('\0');
    let hash = this.#signed.get(key);
    if (hash === undefined) {
      hash = this.#hash(this.#secrets[0]!, fields);
      if (this.#signed.size >= SIGNED_CACHE_SIZE)
        this.#signed.delete(this.#signed.keys().next().value!);
      this.#signed.set(key, hash);
    }
    return hash;
  }

  #hash(secret: string, fields: readonly string[]): string {
    if (this.#scheme === 'postsrsd') {
      // libsrs2: HMAC-SHA1 over the lower-cased fields with no separator, base64.
      const digest = createHmac('sha1', secret).update(fields.join('').toLowerCase()).digest();
      return digest.toString('base64').slice(0, this.#hashLength);
    }
    const digest = createHmac('sha256', secret).update(fields.join('=').toLowerCase()).digest();
    return base32(digest, this.#hashLength);
  }

  #verify(hash: string, data: readonly string[]): boolean {
    // Compared case-insensitively: MTAs may fold the case of a local part.
    const given = Buffer.from(hash.toLowerCase());
    let ok = false;
    // Every secret is checked (no early exit) with a constant-time compare.
    for (const secret of this.#secrets) {
      const expected = Buffer.from(this.#hash(secret, data).toLowerCase());
      if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
    }
    return ok;
  }

  #timestamp(nowMs: number): string {
    const day = Math.floor(nowMs / DAY_MS) % TIMESTAMP_CYCLE;
    const stamp = `${BASE32[day >> 5]}${BASE32[day & 31]}`;
    // libsrs2 writes the stamp in upper case; the hash is over lower case either way.
    return this.#scheme === 'postsrsd' ? stamp.toUpperCase() : stamp;
  }

  #fresh(timestamp: string): boolean {
    const high = BASE32.indexOf(timestamp.charAt(0).toLowerCase());
    const low = BASE32.indexOf(timestamp.charAt(1).toLowerCase());
    if (high < 0 || low < 0) return false;
    const then = (high << 5) | low;
    const today = Math.floor(this.#clock.now() / DAY_MS) % TIMESTAMP_CYCLE;
    const age = (today - then + TIMESTAMP_CYCLE) % TIMESTAMP_CYCLE;
    return age <= this.#maxAgeDays;
  }
}
