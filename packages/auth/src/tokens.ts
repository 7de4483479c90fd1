import { errors, jwtVerify, SignJWT, type CryptoKey, type JWTHeaderParameters } from 'jose';
import { createSecretKey, type KeyObject } from 'node:crypto';
import { randomToken } from './crypto.js';
import { AuthError } from './errors.js';

/** A key for access tokens. List keys newest first: the first one signs, all of them verify. */
export type AccessTokenKey =
  | {
      /** Key id, sent in the JWT `kid` header. */
      kid: string;
      alg: 'HS256';
      /** At least 32 bytes. */
      secret: Uint8Array | string;
    }
  | {
      kid: string;
      alg: 'EdDSA';
      /** Ed25519 private key; leave out on processes that only verify. */
      privateKey?: KeyObject | CryptoKey;
      /** Ed25519 public key. */
      publicKey: KeyObject | CryptoKey;
    };

/** Options for access tokens (JWTs signed with `jose`). */
export interface AccessTokenOptions {
  /** The `iss` claim set and required. */
  issuer: string;
  /** The `aud` claim set and required. */
  audience: string;
  /** Signing and verification keys, newest first; `kid`s must be unique. */
  keys: readonly AccessTokenKey[];
  /** Lifetime of an access token, in ms. Default: 900_000 (15 min). */
  accessTtlMs?: number;
  /** Clock skew accepted on `exp`, `iat` and `nbf`, in ms. Default: 5_000. */
  clockToleranceMs?: number;
  /** Tokens longer than this (characters) are refused unparsed. Default: 4_096. */
  maxTokenLength?: number;
}

/** The claims of a verified access token. */
export interface AccessTokenClaims {
  /** User id. */
  sub: string;
  /** Session id: the refresh-token family the token came from. */
  sid: string;
  /** Unique token id. */
  jti: string;
  iss: string;
  aud: string;
  /** Issued at, epoch seconds. */
  iat: number;
  /** Expiry, epoch seconds. */
  exp: number;
}

type ResolvedKey = {
  kid: string;
  alg: 'HS256' | 'EdDSA';
  verifyKey: Uint8Array | KeyObject | CryptoKey;
  signKey?: Uint8Array | KeyObject | CryptoKey;
};

/** Signs and verifies access tokens; `AuthService` holds one. */
export class AccessTokens {
  readonly #issuer: string;
  readonly #audience: string;
  readonly #keys = new Map<string, ResolvedKey>();
  readonly #signer: ResolvedKey;
  readonly #ttlMs: number;
  readonly #toleranceMs: number;
  readonly #maxLength: number;
  readonly #algorithms: string[];

  /** Validates the options; throws `AuthError('INVALID_OPTIONS')` when they are unusable. */
  constructor(options: AccessTokenOptions) {
    if (options.issuer.length === 0 || options.audience.length === 0)
      fail('issuer and audience must be non-empty');
    this.#issuer = options.issuer;
    this.#audience = options.audience;
    this.#ttlMs = options.accessTtlMs ?? 900_000;
    this.#toleranceMs = options.clockToleranceMs ?? 5_000;
    this.#maxLength = options.maxTokenLength ?? 4_096;
    if (!Number.isInteger(this.#ttlMs) || this.#ttlMs < 1_000)
      fail('accessTtlMs must be an integer >= 1000');
    if (
      !Number.isInteger(this.#toleranceMs) ||
      this.#toleranceMs < 0 ||
      this.#toleranceMs > 300_000
    ) {
      fail('clockToleranceMs must be an integer between 0 and 300000');
    }
    if (options.keys.length === 0) fail('at least one access-token key is required');
    for (const key of options.keys) {
      if (key.kid.length === 0 || key.kid.length > 64) fail('a key id must be 1-64 characters');
      if (this.#keys.has(key.kid)) fail(`duplicate key id "${key.kid}"`);
      if (key.alg === 'HS256') {
        const secret =
          typeof key.secret === 'string' ? new TextEncoder().encode(key.secret) : key.secret;
        if (secret.length < 32) fail(`HS256 key "${key.kid}" must be at least 32 bytes`);
        // A KeyObject lets jose cache the imported CryptoKey instead of importing the bytes per call.
        const keyObject = createSecretKey(secret);
        this.#keys.set(key.kid, {
          kid: key.kid,
          alg: 'HS256',
          verifyKey: keyObject,
          signKey: keyObject,
        });
      } else if (key.alg === 'EdDSA') {
        this.#keys.set(key.kid, {
          kid: key.kid,
          alg: 'EdDSA',
          verifyKey: key.publicKey,
          ...(key.privateKey === undefined ? {} : { signKey: key.privateKey }),
        });
      } else {
        fail('alg must be HS256 or EdDSA');
      }
    }
    this.#signer = this.#keys.get(options.keys[0]!.kid)!;
    this.#algorithms = [...new Set([...this.#keys.values()].map((key) => key.alg))];
  }

  /** Lifetime of an access token, in ms. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Signs a token for a user's session with the newest key. */
  async sign(
    userId: string,
    sessionId: string,
    nowMs: number,
  ): Promise<{ token: string; expiresAt: number }> {
    const signKey = this.#signer.signKey;
    if (signKey === undefined)
      throw new AuthError(
        'INVALID_OPTIONS',
        `key "${this.#signer.kid}" has no private key to sign with`,
      );
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + Math.ceil(this.#ttlMs / 1000);
    const token = await new SignJWT({ sid: sessionId })
      .setProtectedHeader({ alg: this.#signer.alg, kid: this.#signer.kid, typ: 'at+jwt' })
      .setSubject(userId)
      .setIssuer(this.#issuer)
      .setAudience(this.#audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomToken(16))
      .sign(signKey);
    return { token, expiresAt: exp * 1000 };
  }

  /** Verifies signature, `kid`, `alg`, `iss`, `aud`, `exp`, `iat`; throws `TOKEN_INVALID` or `TOKEN_EXPIRED`. */
  async verify(token: string, nowMs: number): Promise<AccessTokenClaims> {
    if (typeof token !== 'string' || token.length === 0 || token.length > this.#maxLength) {
      throw new AuthError('TOKEN_INVALID', 'access token is malformed', { field: 'format' });
    }
    try {
      const { payload } = await jwtVerify(
        token,
        (header: JWTHeaderParameters) => {
          const key = header.kid === undefined ? undefined : this.#keys.get(header.kid);
          // The key fixes the algorithm: a token cannot pick a weaker one (or "none") for itself.
          if (key?.alg !== header.alg)
            throw new AuthError('TOKEN_INVALID', 'unknown key id or algorithm', { field: 'kid' });
          return key.verifyKey;
        },
        {
          issuer: this.#issuer,
          audience: this.#audience,
          algorithms: this.#algorithms,
          clockTolerance: this.#toleranceMs / 1000,
          currentDate: new Date(nowMs),
          requiredClaims: ['sub', 'jti', 'iat', 'exp'],
          typ: 'at+jwt',
        },
      );
      const { sub, sid, jti, iat, exp } = payload;
      if (
        typeof sid !== 'string' ||
        typeof sub !== 'string' ||
        typeof jti !== 'string' ||
        typeof iat !== 'number' ||
        typeof exp !== 'number'
      ) {
        throw new AuthError('TOKEN_INVALID', 'access token lacks required claims', {
          field: 'claims',
        });
      }
      if (iat * 1000 > nowMs + this.#toleranceMs)
        throw new AuthError('TOKEN_INVALID', 'access token issued in the future', { field: 'iat' });
      return { sub, sid, jti, iat, exp, iss: this.#issuer, aud: this.#audience };
    } catch (error) {
      if (AuthError.isInstance(error)) throw error;
      if (error instanceof errors.JWTExpired)
        throw new AuthError('TOKEN_EXPIRED', 'access token expired', { cause: error });
      throw new AuthError('TOKEN_INVALID', 'access token is invalid', {
        cause: error,
        field: 'signature',
      });
    }
  }
}

function fail(message: string): never {
  throw new AuthError('INVALID_OPTIONS', message);
}
