import { stdSerializers } from 'pino';

/** Reads `target[key]`, or undefined when a getter or proxy trap throws. */
function read(target: object, key: PropertyKey): unknown {
  try {
    return (target as Record<PropertyKey, unknown>)[key];
  } catch {
    return undefined;
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The tag pino's serializer puts on an error while it works, left behind when it throws. */
const PINO_SEEN_TAG = 'circular-ref-tag';

function removeSeenTag(error: object): void {
  try {
    for (const symbol of Object.getOwnPropertySymbols(error)) {
      if (symbol.description === PINO_SEEN_TAG) delete (error as Record<symbol, unknown>)[symbol];
    }
  } catch {
    // A frozen error or a proxy: nothing was tagged, or nothing can be done.
  }
}

/**
 * pino's `err` serializer, made total: it throws for a frozen or sealed error (it tags the error
 * while it works), an enumerable getter or a `cause` getter that throws, a proxy whose traps
 * throw, and a cause chain deep enough to overflow the stack. Logging must not throw, so such an
 * error is written as its type, own message and own stack, read one by one; every other error
 * is serialized exactly as pino does. The only cost is a `try` on `err` and `error` fields.
 */
export function serializeError(value: unknown): unknown {
  try {
    return stdSerializers.err(value as Error);
  } catch {
    if (typeof value !== 'object' || value === null) return value;
    removeSeenTag(value);
    const constructor = read(value, 'constructor');
    const type =
      (typeof constructor === 'function' ? text(read(constructor, 'name')) : undefined) ??
      text(read(value, 'name')) ??
      'Error';
    const stack = text(read(value, 'stack'));
    return {
      type,
      message: text(read(value, 'message')) ?? '',
      ...(stack === undefined ? {} : { stack }),
    };
  }
}
