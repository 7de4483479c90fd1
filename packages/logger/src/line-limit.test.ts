import { describe, expect, it } from 'vitest';
import { createLineLimiter } from './line-limit.js';

const line = (value: unknown): string => `${JSON.stringify(value)}\n`;

describe('createLineLimiter', () => {
  const limit = createLineLimiter({ maxStringLength: 32, maxLineLength: 1_024 });

  it('returns an ordinary line itself, not a copy', () => {
    const ordinary = line({ level: 30, time: 1, msg: 'short' });
    expect(limit(ordinary)).toBe(ordinary);
    // Longer than maxStringLength, yet no single string is: still the same string.
    const manyShort = line({ level: 30, a: 'x'.repeat(30), b: 'y'.repeat(30), c: [1, 2, 3] });
    expect(manyShort.length).toBeGreaterThan(34);
    expect(limit(manyShort)).toBe(manyShort);
  });

  it('finds string ends across escaped quotes and backslashes', () => {
    const tricky = 'a\\"b"\\'.repeat(10);
    const out = JSON.parse(limit(line({ k: tricky, after: 'z"'.repeat(20) }))) as Record<
      string,
      string
    >;
    expect(out['k']).toBe(
      `${tricky.slice(0, 32)}...[truncated ${String(tricky.length - 32)} chars]`,
    );
    expect(out['after']).toBe(`${'z"'.repeat(16)}...[truncated 8 chars]`);
  });

  it('always gives valid JSON within maxLineLength for random shapes (seeded)', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const text = (): string =>
      Array.from({ length: Math.floor(random() ** 3 * 400) }, () =>
        String.fromCharCode(random() < 0.1 ? 0xd83d : random() < 0.2 ? 34 : 97 + (seed % 26)),
      ).join('');
    const value = (depth: number): unknown => {
      const roll = random();
      if (depth > 2 || roll < 0.3) return text();
      if (roll < 0.4) return Math.floor(random() * 1e9);
      if (roll < 0.7)
        return Array.from({ length: Math.floor(random() * 12) }, () => value(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(random() * 12) }, () => [text(), value(depth + 1)]),
      );
    };
    const bounded = createLineLimiter({ maxStringLength: 200, maxLineLength: 2_048 });
    const seen = { cut: 0, replaced: 0 };
    for (let run = 0; run < 200; run += 1) {
      const input = line({ level: 30, time: run, ...(value(0) as object), msg: text() });
      const out = bounded(input);
      expect(out.length).toBeLessThanOrEqual(2_048);
      expect(out.endsWith('\n')).toBe(true);
      const parsed = JSON.parse(out) as Record<string, unknown>;
      expect(parsed['time']).toBe(run);
      if (out.includes('...[truncated ')) seen.cut += 1;
      if (out.includes('"[truncated ')) seen.replaced += 1;
    }
    // The shapes reach both stages, not only the fast path.
    expect(seen.cut).toBeGreaterThan(10);
    expect(seen.replaced).toBeGreaterThan(10);
  });

  it('replaces a line that is not one JSON object rather than writing it whole', () => {
    const input = `[${'1,'.repeat(2_000)}1]\n`;
    expect(JSON.parse(limit(input))).toEqual({
      logTruncated: `line of ${String(input.length)} chars dropped`,
    });
  });
});
