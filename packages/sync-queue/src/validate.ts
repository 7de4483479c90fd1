import { SyncQueueError } from './errors.js';

/** Default limit on a serialised payload: 512 KiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024;
/** Default limit on a key, in UTF-8 bytes. */
export const DEFAULT_MAX_KEY_BYTES = 512;

/** Finds the first value that would not survive a JSON round trip unchanged; returns its path or null. */
function findUnserialisable(value: unknown, path: string, seen: Set<object>): string | null {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null;
  if (typeof value === 'number')
    return Number.isFinite(value) ? null : `${path} (non-finite number)`;
  if (typeof value !== 'object') return `${path} (${typeof value})`;
  if (seen.has(value)) return `${path} (circular reference)`;
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      for (let index = 0; index < value.length; index += 1) {
        const found = findUnserialisable(value[index], `${path}[${index}]`, seen);
        if (found !== null) return found;
      }
      return null;
    }
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return `${path} (${typeof name === 'string' ? name : 'non-plain object'})`;
    }
    for (const [field, child] of Object.entries(value)) {
      const found = findUnserialisable(child, `${path}.${field}`, seen);
      if (found !== null) return found;
    }
    return null;
  } finally {
    seen.delete(value);
  }
}

/** Serialises a payload or throws INVALID_PAYLOAD / PAYLOAD_TOO_LARGE. */
export function serialisePayload(payload: unknown, maxPayloadBytes: number): string {
  const problem = findUnserialisable(payload, '$', new Set());
  if (problem !== null) {
    throw new SyncQueueError(
      'INVALID_PAYLOAD',
      `Payload is not JSON-serialisable without loss at ${problem}: use plain objects, arrays, strings, finite numbers, booleans and null.`,
    );
  }
  const text = JSON.stringify(payload);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxPayloadBytes) {
    throw new SyncQueueError(
      'PAYLOAD_TOO_LARGE',
      `Payload is ${bytes} bytes serialised; the limit is ${maxPayloadBytes}.`,
    );
  }
  return text;
}

/** Checks a coalescing key; returns it, or null when absent. */
export function checkKey(key: unknown, maxKeyBytes: number): string | null {
  if (key === undefined) return null;
  if (typeof key !== 'string' || key.length === 0) {
    throw new SyncQueueError('INVALID_KEY', 'A job key must be a non-empty string.');
  }
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > maxKeyBytes) {
    throw new SyncQueueError(
      'INVALID_KEY',
      `A job key is ${bytes} bytes; the limit is ${maxKeyBytes}.`,
    );
  }
  return key;
}

/** Throws INVALID_OPTIONS unless `value` is absent or an object; returns it, or `{}` when absent. */
export function checkOptions<O extends object>(name: string, value: O | undefined): O | Partial<O> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) {
    throw new SyncQueueError(
      'INVALID_OPTIONS',
      `${name} must be an object; got ${value === null ? 'null' : typeof value}.`,
    );
  }
  return value;
}

/** Throws INVALID_OPTIONS unless `value` is an integer within [min, max]. */
export function checkInteger(
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SyncQueueError(
      'INVALID_OPTIONS',
      `${name} must be an integer from ${min} to ${max}; got ${String(value)}.`,
    );
  }
  return value;
}

/** Throws INVALID_OPTIONS unless `value` is a finite number within [min, max]. */
export function checkNumber(
  name: string,
  value: number,
  min: number,
  max = Number.MAX_VALUE,
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new SyncQueueError(
      'INVALID_OPTIONS',
      max === Number.MAX_VALUE
        ? `${name} must be a finite number >= ${min}; got ${String(value)}.`
        : `${name} must be a number from ${min} to ${max}; got ${String(value)}.`,
    );
  }
  return value;
}
