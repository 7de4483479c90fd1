import { COMMON_PASSWORDS } from './common-passwords.js';
import type { PasswordProblem } from './errors.js';

/** Password rules after NIST SP 800-63B: length, a blocklist, no composition rules. */
export interface PasswordPolicyOptions {
  /** Fewest characters (code points, after NFKC). Default: 12. Values below 8 are refused. */
  minLength?: number;
  /** Most characters (code points, after NFKC). Default: 128. Must be at least 64. */
  maxLength?: number;
  /** Most UTF-8 bytes, checked before any other work so huge inputs cost nothing. Default: 1024. */
  maxBytes?: number;
  /** Extra passwords to refuse (compared case-insensitively), e.g. your product's name. Default: none. */
  blocklist?: Iterable<string>;
  /** Refuse the shipped list of common passwords. Default: true. */
  rejectCommon?: boolean;
}

/** The effective policy, with every default filled in. */
export interface PasswordPolicy {
  readonly minLength: number;
  readonly maxLength: number;
  readonly maxBytes: number;
  readonly rejectCommon: boolean;
  readonly blocklist: ReadonlySet<string>;
}

/** Builds a policy from options; throws a `RangeError` for a floor under 8 or a ceiling under 64. */
export function passwordPolicy(options: PasswordPolicyOptions = {}): PasswordPolicy {
  const minLength = options.minLength ?? 12;
  const maxLength = options.maxLength ?? 128;
  const maxBytes = options.maxBytes ?? 1024;
  if (!Number.isInteger(minLength) || minLength < 8)
    throw new RangeError('minLength must be an integer >= 8');
  if (!Number.isInteger(maxLength) || maxLength < 64 || maxLength < minLength) {
    throw new RangeError('maxLength must be an integer >= 64 and >= minLength');
  }
  if (!Number.isInteger(maxBytes) || maxBytes < maxLength)
    throw new RangeError('maxBytes must be an integer >= maxLength');
  const blocklist = new Set<string>();
  for (const word of options.blocklist ?? []) blocklist.add(word.normalize('NFKC').toLowerCase());
  return Object.freeze({
    minLength,
    maxLength,
    maxBytes,
    rejectCommon: options.rejectCommon ?? true,
    blocklist,
  });
}

/** Unicode-normalises a password (NFKC), as it is before hashing and checking. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** True when the password is longer than `maxBytes` UTF-8 bytes (checked without normalising). */
export function isOversized(password: string, maxBytes: number): boolean {
  // A UTF-8 code unit is at most 3 bytes, so this short-circuits huge strings cheaply.
  if (password.length > maxBytes) return true;
  return Buffer.byteLength(password, 'utf8') > maxBytes;
}

/** Every rule `password` breaks under `policy` (empty when it is acceptable). */
export function checkPassword(
  policy: PasswordPolicy,
  password: string,
  email?: string,
): PasswordProblem[] {
  if (isOversized(password, policy.maxBytes)) return ['too_long'];
  const normalized = normalizePassword(password);
  const problems: PasswordProblem[] = [];
  const length = [...normalized].length;
  if (length < policy.minLength) problems.push('too_short');
  if (length > policy.maxLength) problems.push('too_long');
  const lower = normalized.toLowerCase();
  if ((policy.rejectCommon && COMMON_PASSWORDS.has(lower)) || policy.blocklist.has(lower))
    problems.push('common');
  if (email !== undefined) {
    const local = email.normalize('NFKC').toLowerCase().split('@')[0] ?? '';
    if (local.length >= 3 && lower.includes(local)) problems.push('contains_email');
  }
  if (length > 0 && new Set(lower).size <= 2) problems.push('repetitive');
  return problems;
}
