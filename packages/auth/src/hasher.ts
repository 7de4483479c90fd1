import argon2 from 'argon2';
import { scrypt, timingSafeEqual } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { AuthError } from './errors.js';
import { normalizePassword } from './password-policy.js';

/** Hashes and verifies passwords. `AuthService` calls it with the password as the user typed it. */
export interface Hasher {
  /** A self-describing hash of the password. */
  hash(password: string): Promise<string>;
  /** True when `password` matches `hash`; false for a wrong password or a hash it cannot read. */
  verify(hash: string, password: string): Promise<boolean>;
  /** True when `hash` should be replaced at the next successful login (old parameters, legacy scheme, old pepper). */
  needsRehash(hash: string): boolean;
}

/** Verifies hashes of another scheme (bcrypt, scrypt) so they can migrate to argon2id at the next login. */
export interface LegacyVerifier {
  /** True when this verifier reads `hash`. */
  canVerify(hash: string): boolean;
  verify(hash: string, password: string): Promise<boolean>;
}

/** A pepper: an HMAC key kept outside the database (argon2's secret input), named so it can rotate. */
export interface Pepper {
  /** A short name stored with each hash: letters, digits, `_` and `-`. */
  id: string;
  /** At least 16 bytes. */
  secret: Uint8Array | string;
}

/** Parameters an `Argon2Binding` hashes with (argon2id, 32-byte output, 16-byte random salt). */
export interface Argon2Parameters {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
  secret?: Buffer;
}

/**
 * A native argon2 implementation. Both shipped bindings write and read the same PHC strings, so
 * hashes move freely between them: `nodeArgon2()` (npm `argon2`, the default) and `nodeRsArgon2()`
 * from `@postern/auth/node-rs-argon2` (npm `@node-rs/argon2`).
 */
export interface Argon2Binding {
  /** An argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). */
  hash(password: string, parameters: Argon2Parameters): Promise<string>;
  /** True when `password` (with `secret`, if any) matches the PHC string; may throw for a malformed one. */
  verify(phc: string, password: string, secret: Buffer | undefined): Promise<boolean>;
}

/** The binding of npm `argon2` (node-argon2): the default. */
export function nodeArgon2(): Argon2Binding {
  return {
    hash: (password, parameters) =>
      argon2.hash(password, {
        type: argon2.argon2id,
        memoryCost: parameters.memoryCost,
        timeCost: parameters.timeCost,
        parallelism: parameters.parallelism,
        ...(parameters.secret === undefined ? {} : { secret: parameters.secret }),
      }),
    verify: (phc, password, secret) =>
      argon2.verify(phc, password, secret === undefined ? {} : { secret }),
  };
}

/** Options of `Argon2Hasher`. Defaults follow OWASP's argon2id minimum. */
export interface Argon2HasherOptions {
  /** The native implementation. Default: `nodeArgon2()` (npm `argon2`). */
  binding?: Argon2Binding;
  /** Memory per hash, in KiB. Default: 19_456 (19 MiB). */
  memoryCost?: number;
  /** Passes over memory. Default: 2. */
  timeCost?: number;
  /** Lanes. Default: 1. */
  parallelism?: number;
  /** The pepper new hashes use. Default: none. */
  pepper?: Pepper;
  /** Older peppers that existing hashes may name; they verify and are rehashed at the next login. Default: []. */
  previousPeppers?: readonly Pepper[];
  /** Readers for bcrypt/scrypt hashes being migrated. Default: [scryptVerifier()]. */
  legacy?: readonly LegacyVerifier[];
  /**
   * Hashes running at once; others wait in line. Hashing runs on libuv's thread pool and is pure
   * CPU work, so more hashes than cores only starve the event loop, and a full pool stalls file
   * and DNS work. Default: max(1, min(UV_THREADPOOL_SIZE - 1, os.availableParallelism())).
   */
  maxConcurrency?: number;
}

const PEPPER_PREFIX = /^\$pepper=([A-Za-z0-9_-]{1,32})(\$argon2id\$.*)$/s;
const MAX_HASH_LENGTH = 512;
// Version 19 (0x13) only: an older version is rehashed too.
const PHC_PARAMETERS =
  /^\$argon2id\$v=19\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;

function toBuffer(secret: Uint8Array | string): Buffer {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
}

/** A counting semaphore; `run` waits for a free slot. */
class Slots {
  #free: number;
  readonly #waiting: Array<() => void> = [];
  constructor(size: number) {
    this.#free = size;
  }
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#free += 1;
      else next();
    }
  }
}

function defaultConcurrency(): number {
  const size = Number.parseInt(process.env['UV_THREADPOOL_SIZE'] ?? '', 10);
  const poolSlots = (Number.isFinite(size) && size > 0 ? size : 4) - 1;
  return Math.max(1, Math.min(poolSlots, availableParallelism()));
}

/** argon2id password hashing (npm `argon2`, native, off the event loop) with pepper rotation and legacy migration. */
export class Argon2Hasher implements Hasher {
  readonly #memoryCost: number;
  readonly #timeCost: number;
  readonly #parallelism: number;
  readonly #pepper: { id: string; secret: Buffer } | undefined;
  readonly #peppers = new Map<string, Buffer>();
  readonly #legacy: readonly LegacyVerifier[];
  readonly #slots: Slots;
  readonly #binding: Argon2Binding;

  /** Creates a hasher; throws `AuthError('INVALID_OPTIONS')` for parameters below argon2's minimums or a short pepper. */
  constructor(options: Argon2HasherOptions = {}) {
    this.#memoryCost = options.memoryCost ?? 19_456;
    this.#timeCost = options.timeCost ?? 2;
    this.#parallelism = options.parallelism ?? 1;
    const concurrency = options.maxConcurrency ?? defaultConcurrency();
    if (!Number.isInteger(this.#memoryCost) || this.#memoryCost < 1024)
      invalid('memoryCost must be an integer >= 1024 KiB');
    if (!Number.isInteger(this.#timeCost) || this.#timeCost < 1)
      invalid('timeCost must be an integer >= 1');
    if (!Number.isInteger(this.#parallelism) || this.#parallelism < 1)
      invalid('parallelism must be an integer >= 1');
    if (!Number.isInteger(concurrency) || concurrency < 1)
      invalid('maxConcurrency must be an integer >= 1');
    for (const pepper of [
      ...(options.previousPeppers ?? []),
      ...(options.pepper === undefined ? [] : [options.pepper]),
    ]) {
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(pepper.id))
        invalid('pepper id must be 1-32 letters, digits, _ or -');
      const secret = toBuffer(pepper.secret);
      if (secret.length < 16) invalid('a pepper secret must be at least 16 bytes');
      this.#peppers.set(pepper.id, secret);
    }
    this.#pepper =
      options.pepper === undefined
        ? undefined
        : { id: options.pepper.id, secret: toBuffer(options.pepper.secret) };
    this.#legacy = options.legacy ?? [scryptVerifier()];
    this.#slots = new Slots(concurrency);
    this.#binding = options.binding ?? nodeArgon2();
  }

  /** Hashes with argon2id at the configured parameters (and pepper). */
  async hash(password: string): Promise<string> {
    const pepper = this.#pepper;
    const phc = await this.#slots.run(() =>
      this.#binding.hash(normalizePassword(password), {
        memoryCost: this.#memoryCost,
        timeCost: this.#timeCost,
        parallelism: this.#parallelism,
        ...(pepper === undefined ? {} : { secret: pepper.secret }),
      }),
    );
    return pepper === undefined ? phc : `$pepper=${pepper.id}${phc}`;
  }

  /** Verifies argon2 hashes (with the pepper they name) and, through `legacy`, bcrypt/scrypt hashes. */
  async verify(hash: string, password: string): Promise<boolean> {
    if (hash.length > MAX_HASH_LENGTH) return false;
    const peppered = PEPPER_PREFIX.exec(hash);
    if (peppered !== null) {
      const secret = this.#peppers.get(peppered[1]!);
      if (secret === undefined)
        throw new AuthError(
          'INVALID_OPTIONS',
          `a stored hash names pepper "${peppered[1]!}", which is not configured`,
        );
      return this.#argon2Verify(peppered[2]!, password, secret);
    }
    if (hash.startsWith('$argon2')) return this.#argon2Verify(hash, password, undefined);
    const legacy = this.#legacy.find((verifier) => verifier.canVerify(hash));
    if (legacy === undefined) return false;
    return this.#slots.run(() => legacy.verify(hash, password));
  }

  /** True for legacy schemes, another pepper, or argon2 parameters other than the configured ones. */
  needsRehash(hash: string): boolean {
    const peppered = PEPPER_PREFIX.exec(hash);
    if ((peppered?.[1] ?? undefined) !== this.#pepper?.id) return true;
    const phc = peppered?.[2] ?? hash;
    const parameters = PHC_PARAMETERS.exec(phc);
    if (parameters === null) return true;
    return (
      Number(parameters[1]) !== this.#memoryCost ||
      Number(parameters[2]) !== this.#timeCost ||
      Number(parameters[3]) !== this.#parallelism
    );
  }

  async #argon2Verify(phc: string, password: string, secret: Buffer | undefined): Promise<boolean> {
    try {
      return await this.#slots.run(() =>
        this.#binding.verify(phc, normalizePassword(password), secret),
      );
    } catch {
      // A malformed stored hash verifies nothing; it must not crash a login.
      return false;
    }
  }
}

function invalid(message: string): never {
  throw new AuthError('INVALID_OPTIONS', message);
}

const SCRYPT =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/._-]+={0,2})\$([A-Za-z0-9+/._-]+={0,2})$/;

/**
 * Reads scrypt hashes in the PHC-style form `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`
 * (salt and hash base64 or base64url), as passlib and many Node apps write them. Cost is capped
 * (N <= 2^20, r <= 32, p <= 16) so a planted hash cannot exhaust memory.
 */
export function scryptVerifier(): LegacyVerifier {
  return {
    canVerify: (hash) => hash.startsWith('$scrypt$'),
    async verify(hash, password) {
      const match = SCRYPT.exec(hash);
      if (match === null) return false;
      const ln = Number(match[1]);
      const r = Number(match[2]);
      const p = Number(match[3]);
      if (ln < 1 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
      const salt = Buffer.from(match[4]!, 'base64');
      const expected = Buffer.from(match[5]!, 'base64');
      if (expected.length < 16 || expected.length > 128) return false;
      const N = 2 ** ln;
      const derived = await new Promise<Buffer>((resolve, reject) => {
        scrypt(
          password,
          salt,
          expected.length,
          { N, r, p, maxmem: 256 * N * r + 1024 * 1024 },
          (error, key) => {
            if (error === null) resolve(key);
            else reject(error);
          },
        );
      });
      return timingSafeEqual(derived, expected);
    },
  };
}

/**
 * Reads bcrypt hashes (`$2a$`, `$2b$`, `$2y$`) with a compare function you supply, e.g.
 * `bcryptVerifier((password, hash) => bcrypt.compare(password, hash))` from `bcryptjs`; this
 * package ships no bcrypt implementation of its own.
 */
export function bcryptVerifier(
  compare: (password: string, hash: string) => Promise<boolean>,
): LegacyVerifier {
  return {
    canVerify: (hash) => /^\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash),
    async verify(hash, password) {
      try {
        return await compare(password, hash);
      } catch {
        return false;
      }
    },
  };
}
