// @postern/auth/node-rs-argon2: the @node-rs/argon2 binding (an optional peer dependency).
import { hash, verify } from '@node-rs/argon2';
import type { Argon2Binding } from './hasher.js';

/**
 * The binding of npm `@node-rs/argon2` (Rust, prebuilt for each platform): same parameters, same
 * PHC strings as the default, faster per hash. Pass it as `new Argon2Hasher({ binding: nodeRsArgon2() })`.
 */
export function nodeRsArgon2(): Argon2Binding {
  return {
    hash: (password, parameters) =>
      hash(password, {
        // Algorithm.Argon2id: the package declares it as an ambient const enum, which isolated builds cannot read.
        algorithm: 2,
        memoryCost: parameters.memoryCost,
        timeCost: parameters.timeCost,
        parallelism: parameters.parallelism,
        outputLen: 32,
        ...(parameters.secret === undefined ? {} : { secret: parameters.secret }),
      }),
    verify: (phc, password, secret) =>
      verify(phc, password, secret === undefined ? {} : { secret }),
  };
}
