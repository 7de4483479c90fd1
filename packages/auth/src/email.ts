import { AuthError } from './errors.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f\s]/u;

/** Trims, NFKC-normalises and lower-cases an email; throws `INVALID_INPUT` unless it looks like `local@domain`. */
export function normalizeEmail(email: unknown): string {
  if (typeof email !== 'string' || email.length > 1024) throw badEmail();
  const value = email.trim().normalize('NFKC').toLowerCase();
  const at = value.lastIndexOf('@');
  if (at < 1 || at > 64 || at === value.length - 1 || value.length > 254 || CONTROL.test(value))
    throw badEmail();
  if (value.indexOf('@') !== at) throw badEmail();
  return value;
}

function badEmail(): AuthError {
  return new AuthError('INVALID_INPUT', 'email address is malformed', { field: 'email' });
}
