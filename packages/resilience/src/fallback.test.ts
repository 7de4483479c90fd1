import { describe, expect, it } from 'vitest';
import { fallback, InvalidOptionError } from './index.js';

describe('fallback', () => {
  it('resolves to the value on error and passes successes through', async () => {
    const policy = fallback('cached');
    await expect(policy.execute(() => Promise.reject(new Error('down')))).resolves.toBe('cached');
    await expect(policy.execute(() => 'fresh')).resolves.toBe('fresh');
  });

  it('calls a function with the error and context', async () => {
    const policy = fallback((error, context) => `${(error as Error).message}@${context.attempt}`);
    await expect(
      policy.execute(() => {
        throw new Error('sync');
      }),
    ).resolves.toBe('sync@1');
    const asyncPolicy = fallback(async () => Promise.resolve(5));
    await expect(asyncPolicy.execute(() => Promise.reject(new Error('x')))).resolves.toBe(5);
  });

  it('only handles the chosen errors', async () => {
    const policy = fallback([] as string[], { handles: (error) => error instanceof TypeError });
    await expect(policy.execute(() => Promise.reject(new TypeError('t')))).resolves.toEqual([]);
    await expect(policy.execute(() => Promise.reject(new RangeError('r')))).rejects.toBeInstanceOf(
      RangeError,
    );
  });

  it('does not mask the caller’s own abort', async () => {
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    const policy = fallback('substitute');
    const call = policy.execute(
      ({ signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason as Error)),
        ),
      controller.signal,
    );
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
  });

  it('fires onFallback', async () => {
    const policy = fallback(0);
    const seen: unknown[] = [];
    policy.onFallback(({ error }) => seen.push((error as Error).message));
    await policy.execute(() => Promise.reject(new Error('e1')));
    expect(seen).toEqual(['e1']);
  });

  it('rejects an invalid handles option', () => {
    expect(() => fallback(1, { handles: 'all' as never })).toThrow(InvalidOptionError);
  });
});
