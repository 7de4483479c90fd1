import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import * as z from 'zod';
import { integer, list, port, url } from './coerce.js';
import { devDefault } from './dev-default.js';
import { directFor, USE_SCHEMA } from './direct.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { loadConfig, type Shape } from './load.js';
import { entropyBits, Secret, secret } from './secret.js';

const STRONG = 'vQ8#nL2$wZ5!rT9@kM4&xB7';

function failure(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (ConfigError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const summary = (
  issues: readonly ConfigIssue[],
): [string, string, readonly (string | number)[], string][] =>
  issues.map((issue) => [issue.env, issue.code, issue.path, issue.message]);

describe('loadConfig: cached plans', () => {
  it('reads a changed environment with the same shape object', () => {
    const shape = { port: port(), name: z.string() };
    expect(loadConfig(shape, { env: { PORT: '25', NAME: 'a' } })).toEqual({ port: 25, name: 'a' });
    expect(loadConfig(shape, { env: { PORT: '587', NAME: 'b' } })).toEqual({
      port: 587,
      name: 'b',
    });
    expect(
      failure(() => loadConfig(shape, { env: { NAME: 'c' } })).issues.map((issue) => issue.code),
    ).toEqual(['MISSING']);
  });

  it('compiles a shape again after a key is replaced, added, removed or reordered', () => {
    const shape: Record<string, z.core.$ZodType> = { port: port(), name: z.string() };
    const env = { PORT: '25', NAME: 'relay', EXTRA: '7' };
    expect(loadConfig(shape, { env })).toEqual({ port: 25, name: 'relay' });
    shape['port'] = z.string();
    expect(loadConfig(shape, { env })).toEqual({ port: '25', name: 'relay' });
    shape['extra'] = integer();
    expect(loadConfig(shape, { env })).toEqual({ port: '25', name: 'relay', extra: 7 });
    delete shape['name'];
    expect(loadConfig(shape, { env })).toEqual({ port: '25', extra: 7 });
    const port25 = shape['port'];
    delete shape['port'];
    shape['port'] = port25!;
    expect(Object.keys(loadConfig(shape, { env }))).toEqual(['extra', 'port']);
  });

  it('notices a change inside a nested shape', () => {
    const smtp: Record<string, z.core.$ZodType> = { port: port() };
    const shape = { smtp };
    expect(loadConfig(shape, { env: { SMTP_PORT: '25' } })).toEqual({ smtp: { port: 25 } });
    smtp['port'] = z.string();
    expect(loadConfig(shape, { env: { SMTP_PORT: '25' } })).toEqual({ smtp: { port: '25' } });
  });

  it('keeps one plan per prefix', () => {
    const shape = { port: port() };
    expect(loadConfig(shape, { env: { PORT: '25', APP_PORT: '587' } }).port).toBe(25);
    expect(loadConfig(shape, { env: { PORT: '25', APP_PORT: '587' }, prefix: 'APP_' }).port).toBe(
      587,
    );
    expect(loadConfig(shape, { env: { PORT: '26' } }).port).toBe(26);
  });
});

describe('loadConfig: result assembly', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  const shape = {
    name: z.string(),
    smtp: { host: z.string(), tls: { port: port() } },
    relays: list(url()),
    region: z.enum(['eu', 'us']),
  };
  const env = {
    NAME: 'mx',
    SMTP_HOST: 'smtp.example.com',
    SMTP_TLS_PORT: '465',
    RELAYS: 'https://a.example',
    REGION: 'eu',
  };
  const expected = {
    name: 'mx',
    smtp: { host: 'smtp.example.com', tls: { port: 465 } },
    relays: ['https://a.example'],
    region: 'eu',
  };

  function check(config: Record<string, unknown>): void {
    expect(config).toEqual(expected);
    expect(JSON.stringify(config)).toBe(JSON.stringify(expected));
    const smtp = config['smtp'] as { tls: unknown };
    for (const object of [config, smtp, smtp.tls, config['relays']])
      expect(Object.isFrozen(object)).toBe(true);
    expect(Object.getOwnPropertyDescriptor(config, 'warnings')).toMatchObject({
      enumerable: false,
      value: [],
    });
  }

  it('builds nested, frozen objects in shape order', () => {
    check(loadConfig(shape, { env }));
  });

  it('gives the same result where code generation is disallowed (CSP)', () => {
    vi.stubGlobal('Function', function refused(): never {
      throw new EvalError('Code generation from strings disallowed for this context');
    });
    // A fresh shape object, so its plan is compiled while Function refuses.
    const config = loadConfig({ ...shape }, { env });
    vi.unstubAllGlobals();
    check(config);
  });

  it('makes a __proto__ key an own property, never the prototype', () => {
    const odd = JSON.parse('{"__proto__": {}}') as Shape;
    (odd as Record<string, unknown>)['__proto__'] = z.string();
    const config = loadConfig(odd, { env: { PROTO: 'x' } }) as unknown as Record<string, unknown>;
    expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(config, '__proto__')?.value).toBe('x');
  });

  it('handles a __proto__ key the same without code generation', () => {
    vi.stubGlobal('Function', function refused(): never {
      throw new EvalError('refused');
    });
    const odd = JSON.parse('{"__proto__": {}}') as Record<string, unknown>;
    odd['__proto__'] = z.string();
    const config = loadConfig(odd as Shape, { env: { PROTO: 'x' } }) as unknown as Record<
      string,
      unknown
    >;
    vi.unstubAllGlobals();
    expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(config, '__proto__')?.value).toBe('x');
  });

  it('keeps a key that is not a JavaScript identifier', () => {
    const config = loadConfig(
      { 'a"b\u2028c': z.string(), 'x-y': { '0': port() } },
      { env: { A_B_C: 'q', X_Y_0: '25' } },
    );
    expect(config).toEqual({ 'a"b\u2028c': 'q', 'x-y': { '0': 25 } });
  });
});

describe('direct parsing (without the zod pipe)', () => {
  it('uses the direct parser only for schemas whose result on a string is certain', () => {
    expect(directFor(port())).toBeTypeOf('function');
    expect(directFor(z.string())?.('a', [])).toBe('a');
    expect(directFor(z.enum(['a', 'b']))?.('b', [])).toBe('b');
    expect(directFor(z.enum(['a', 'b']))?.('c', [])).toBe(USE_SCHEMA);
    expect(directFor(z.literal('on'))?.('on', [])).toBe('on');
    expect(directFor(url().optional())).toBeTypeOf('function');
    expect(directFor(z.string().nullable())?.('n', [])).toBe('n');
    expect(directFor(port().default(25))?.('587', [])).toBe(587);
    expect(directFor(z.string().prefault('x'))?.('y', [])).toBe('y');
    expect(
      directFor(
        z
          .string()
          .transform((): string | undefined => undefined)
          .default('d'),
      ),
    ).toBeUndefined();
    const odd = directFor(z.string().default('d'));
    expect(odd?.('s', [])).toBe('s');
    expect(directFor(z.string().optional().default('d'))?.('s', [])).toBe('s');
    for (const schema of [
      z.string().min(3),
      z.email(),
      z.coerce.string(),
      port().refine(() => true),
      z.number(),
      z
        .string()
        .optional()
        .refine(() => true),
    ]) {
      expect(directFor(schema)).toBeUndefined();
    }
  });

  it('reports zod messages and checks for schemas parsed by zod', () => {
    const shape = {
      short: z.string().min(3),
      mail: z.email(),
      region: z.enum(['eu', 'us']),
      refined: port().refine((value) => value !== 25, 'not 25'),
    };
    const error = failure(() =>
      loadConfig(shape, { env: { SHORT: 'ab', MAIL: 'nope', REGION: 'mars', REFINED: '25' } }),
    );
    expect(error.issues.map((issue) => [issue.env, issue.code])).toEqual([
      ['SHORT', 'INVALID'],
      ['MAIL', 'INVALID'],
      ['REGION', 'INVALID'],
      ['REFINED', 'INVALID'],
    ]);
    expect(error.issues[2]?.message).toBe(
      z.safeParse(z.enum(['eu', 'us']), 'mars').error?.issues[0]?.message,
    );
    expect(error.issues[3]?.message).toBe('not 25');
  });

  it('gives the same issues, paths and values as the zod pipe', () => {
    const shape = {
      ports: list(port()),
      tags: list(),
      token: secret({ format: url({ protocols: ['postgres'] }), minEntropyBits: 0 }),
      count: integer({ min: 2 }),
    };
    const env = {
      PORTS: '25, x,70000',
      TAGS: 'a,,b',
      TOKEN: 'http://u:pw@db.example.com/app',
      COUNT: '1',
    };
    const error = failure(() => loadConfig(shape, { env }));
    expect(summary(error.issues)).toEqual([
      ['PORTS', 'INVALID', ['ports', 1], 'must be a port number between 1 and 65535'],
      ['PORTS', 'INVALID', ['ports', 2], 'must be a port number between 1 and 65535'],
      ['TAGS', 'INVALID', ['tags', 1], 'is empty'],
      ['TOKEN', 'INVALID', ['token'], 'must use one of these protocols: postgres'],
      ['COUNT', 'INVALID', ['count'], 'must be at least 2'],
    ]);
    // The same schemas through zod's own pipe.
    expect(
      z.safeParse(shape.ports, env.PORTS).error?.issues.map((issue) => [issue.path, issue.message]),
    ).toEqual([
      [[1], 'must be a port number between 1 and 65535'],
      [[2], 'must be a port number between 1 and 65535'],
    ]);
    expect(z.safeParse(shape.tags, env.TAGS).error?.issues.map((issue) => issue.path)).toEqual([
      [1],
    ]);
  });

  it('runs zod for an enum miss under a default, and parses set values of defaulted schemas directly', () => {
    const empty = z.enum(['a']).optional().default('a');
    expect(directFor(empty)?.('b', [])).toBe(USE_SCHEMA);
    const config = loadConfig(
      { port: port().default(25), region: z.enum(['eu', 'us']).default('eu') },
      { env: { PORT: '587' } },
    );
    expect(config).toEqual({ port: 587, region: 'eu' });
    expect(
      summary(
        failure(() => loadConfig({ port: port().default(25) }, { env: { PORT: '0' } })).issues,
      ),
    ).toEqual([['PORT', 'INVALID', ['port'], 'must be a port number between 1 and 65535']]);
  });

  it('keeps the direct parser on a devDefault copy', () => {
    const shape = { port: devDefault(port(), '2525') };
    expect(loadConfig(shape, { env: {}, mode: 'development' }).port).toBe(2525);
    expect(
      summary(failure(() => loadConfig(shape, { env: { PORT: 'x' }, mode: 'development' })).issues),
    ).toEqual([['PORT', 'INVALID', ['port'], 'must be a port number between 1 and 65535']]);
  });

  it('refuses an asynchronous list item or secret format, as zod does', () => {
    const asyncItem = z.string().refine(async () => Promise.resolve(true));
    for (const schema of [list(asyncItem), secret({ format: asyncItem })]) {
      const error = failure(() => loadConfig({ value: schema }, { env: { VALUE: STRONG } }));
      expect(error.code).toBe('SHAPE_INVALID');
    }
  });

  it('redacts a secret from a direct format message that repeats it', () => {
    const echo = list(z.enum(['x']));
    const error = failure(() =>
      loadConfig({ token: secret({ format: echo }) }, { env: { TOKEN: STRONG } }),
    );
    expect(JSON.stringify(error.issues)).not.toContain(STRONG);
    const ok = loadConfig({ token: secret({ format: list() }) }, { env: { TOKEN: STRONG } });
    expect(Secret.isInstance(ok.token) && ok.token.reveal()).toBe(STRONG);
  });
});

describe('entropyBits counters', () => {
  it('gives the same figure after a string that mixes ASCII and other characters', () => {
    const before = entropyBits('abcabc');
    expect(entropyBits('abcé')).toBeCloseTo(8, 5);
    expect(entropyBits('abcabc')).toBe(before);
    expect(entropyBits('a'.repeat(300) + 'b'.repeat(300))).toBeCloseTo(600, 5);
  });
});

describe('NAME_FILE lookups', () => {
  const directory = mkdtempSync(join(tmpdir(), 'postern-config-fast-'));
  const path = join(directory, 'token');
  writeFileSync(path, `${STRONG}\n`);
  afterAll(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  it('reads NAME_FILE from a plain object, an object without prototype and a proxy that only answers get', () => {
    const shape = { token: secret(), name: z.string() };
    const bare = Object.assign(Object.create(null) as Record<string, string>, {
      NAME: 'a',
      TOKEN_FILE: path,
    });
    const proxy = new Proxy(
      {},
      {
        get: (_target, key) =>
          (({ NAME: 'a', TOKEN_FILE: path }) as Record<string | symbol, string | undefined>)[key],
      },
    );
    for (const env of [{ NAME: 'a', TOKEN_FILE: path }, bare, proxy]) {
      const config = loadConfig(shape, { env, mode: 'production' });
      expect(config.token.reveal()).toBe(STRONG);
    }
  });

  it('still reports a variable set twice when the file variable comes first', () => {
    const error = failure(() =>
      loadConfig({ token: secret() }, { env: { TOKEN_FILE: path, TOKEN: STRONG } }),
    );
    expect(error.issues.map((issue) => issue.code)).toEqual(['FILE_CONFLICT']);
  });
});

describe('freezing list values', () => {
  it('deep-freezes object items that a list item schema makes', () => {
    const shape = { pairs: list(z.string().transform((text) => ({ text }))) };
    const config = loadConfig(shape, { env: { PAIRS: 'a,b' } });
    expect(config.pairs).toEqual([{ text: 'a' }, { text: 'b' }]);
    expect(Object.isFrozen(config.pairs)).toBe(true);
    expect(Object.isFrozen(config.pairs[0])).toBe(true);
  });

  it('leaves a list parsed by zod directly unfrozen', () => {
    const result = z.safeParse(list(), 'a,b');
    expect(Object.isFrozen(result.data)).toBe(false);
  });
});

describe('url schemes', () => {
  it('ignores protocols that are not valid scheme names and refuses control characters before the scheme', () => {
    const schema = url({ protocols: ['https', 'not a scheme'] });
    expect(z.safeParse(schema, 'not a scheme://x').error?.issues[0]?.message).toBe(
      'must be an absolute URL',
    );
    expect(z.safeParse(schema, '\u0001https://example.com').error?.issues[0]?.message).toBe(
      'must be an absolute URL',
    );
    expect(z.safeParse(schema, 'HTTPS://example.com').data).toBe('HTTPS://example.com');
    expect(z.safeParse(schema, 'ftp://example.com').error?.issues[0]?.message).toBe(
      'must use one of these protocols: https',
    );
  });
});
