import { describe, expect, it } from 'vitest';
import { LoggerError } from './errors.js';
import {
  DEFAULT_REDACT_KEYS,
  DEFAULT_REDACT_SUFFIXES,
  assertRedactKey,
  createLineScrubber,
  jsonValueEnd,
  keySpellings,
  redactPaths,
  sensitiveKeyPattern,
  sensitiveTextPatterns,
  topLevelPath,
  topLevelPaths,
} from './redaction.js';

const scrub = createLineScrubber({
  keys: DEFAULT_REDACT_KEYS,
  suffixes: DEFAULT_REDACT_SUFFIXES,
  censor: '[Redacted]',
  scrubText: true,
});

function scrubObject(value: unknown): unknown {
  return JSON.parse(scrub(JSON.stringify(value)));
}

describe('jsonValueEnd', () => {
  it('finds the end of strings with escapes, objects, arrays and scalars', () => {
    const line = '{"a":"x\\"y\\\\","b":{"c":"}","d":[1,"]"]},"e":12.5,"f":true}\n';
    const start = (key: string): number => line.indexOf(`"${key}":`) + key.length + 3;
    expect(line.slice(start('a'), jsonValueEnd(line, start('a')))).toBe('"x\\"y\\\\"');
    expect(line.slice(start('b'), jsonValueEnd(line, start('b')))).toBe('{"c":"}","d":[1,"]"]}');
    expect(line.slice(start('e'), jsonValueEnd(line, start('e')))).toBe('12.5');
    expect(line.slice(start('f'), jsonValueEnd(line, start('f')))).toBe('true');
  });

  it('stops at the end of a truncated line instead of running past it', () => {
    expect(jsonValueEnd('"abc', 0)).toBe(4);
    expect(jsonValueEnd('{"a":[1,2', 0)).toBe(9);
    expect(jsonValueEnd('"ab\\', 0)).toBe(4);
    expect(jsonValueEnd('123', 0)).toBe(3);
  });
});

describe('sensitive key matching', () => {
  const redacts = (keys: readonly string[], suffixes: readonly string[], key: string): boolean => {
    const scrubber = createLineScrubber({ keys, suffixes, censor: 'X', scrubText: false });
    return (
      (JSON.parse(scrubber(JSON.stringify({ a: 1, [key]: 'v' }))) as Record<string, unknown>)[
        key
      ] === 'X'
    );
  };

  it('matches whole keys in any case and separator spelling', () => {
    for (const key of [
      'passwordHash',
      'password_hash',
      'PASSWORD-HASH',
      'passwordhash',
      'Set-Cookie',
      'SET_COOKIE',
      'setCookie',
    ]) {
      expect(redacts(['passwordHash', 'set-cookie'], [], key), key).toBe(true);
    }
    for (const key of [
      'passwordHashes',
      'xpasswordHash',
      'cookie',
      'my-set-cookie',
      'a"set-cookie',
    ]) {
      expect(redacts(['passwordHash', 'set-cookie'], [], key), key).toBe(false);
    }
  });

  it('matches key endings only when suffixes are given', () => {
    expect(redacts([], ['token'], 'csrf_token')).toBe(true);
    expect(redacts([], ['token'], 'x'.repeat(100) + 'token')).toBe(true);
    expect(redacts([], ['token'], 'x'.repeat(101) + 'token')).toBe(false);
    expect(redacts([], ['token'], 'my token')).toBe(false);
    expect(redacts(['token'], [], 'csrf_token')).toBe(false);
    expect(redacts(['token'], [], 'token')).toBe(true);
  });

  it('never matches a key-like text inside a string value', () => {
    const pattern = sensitiveKeyPattern(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_SUFFIXES);
    expect(pattern.test(JSON.stringify({ msg: '"password":"x"' }))).toBe(false);
    const scrubber = createLineScrubber({
      keys: DEFAULT_REDACT_KEYS,
      suffixes: DEFAULT_REDACT_SUFFIXES,
      censor: 'X',
      scrubText: false,
    });
    const line = JSON.stringify({ note: 'a', 'x\\"password': 'kept' });
    expect(scrubber(line)).toBe(line);
  });
});

describe('createLineScrubber', () => {
  it('redacts the listed keys at the top level and in req.headers.* and user.*', () => {
    const input = {
      password: 'p0',
      passwordHash: 'h0',
      token: 't0',
      accessToken: 'a0',
      refreshToken: 'r0',
      secret: 's0',
      apiKey: 'k0',
      authorization: 'z0',
      cookie: 'c0',
      'set-cookie': ['sc0', 'sc1'],
      req: {
        headers: { authorization: 'z1', cookie: 'c1', 'set-cookie': ['sc2'], host: 'example.com' },
      },
      user: { id: 7, password: 'p1', passwordHash: 'h1', token: 't1', apiKey: 'k1', secret: 's1' },
    };
    const out = scrubObject(input) as Record<string, unknown>;
    expect(out).toEqual({
      password: '[Redacted]',
      passwordHash: '[Redacted]',
      token: '[Redacted]',
      accessToken: '[Redacted]',
      refreshToken: '[Redacted]',
      secret: '[Redacted]',
      apiKey: '[Redacted]',
      authorization: '[Redacted]',
      cookie: '[Redacted]',
      'set-cookie': '[Redacted]',
      req: {
        headers: {
          authorization: '[Redacted]',
          cookie: '[Redacted]',
          'set-cookie': '[Redacted]',
          host: 'example.com',
        },
      },
      user: {
        id: 7,
        password: '[Redacted]',
        passwordHash: '[Redacted]',
        token: '[Redacted]',
        apiKey: '[Redacted]',
        secret: '[Redacted]',
      },
    });
  });

  it('replaces object, array, number, boolean and null values whole, and skips what is inside', () => {
    const out = scrubObject({
      secret: { nested: { deeper: 'x' } },
      token: [1, { a: 'b' }],
      apiKey: 12345,
      password: true,
      authorization: null,
      after: 'kept',
    });
    expect(out).toEqual({
      secret: '[Redacted]',
      token: '[Redacted]',
      apiKey: '[Redacted]',
      password: '[Redacted]',
      authorization: '[Redacted]',
      after: 'kept',
    });
  });

  it('redacts at depth 10 and inside arrays of objects', () => {
    let deep: Record<string, unknown> = { password: 'deep-secret' };
    for (let depth = 0; depth < 10; depth += 1) deep = { [`level${String(depth)}`]: deep };
    const line = scrub(JSON.stringify({ deep, list: [{ token: 'a' }, { token: 'b' }] }));
    expect(line).not.toContain('deep-secret');
    expect(JSON.parse(line)).toMatchObject({
      list: [{ token: '[Redacted]' }, { token: '[Redacted]' }],
    });
  });

  it('leaves lines with nothing sensitive byte-for-byte unchanged', () => {
    const line =
      '{"level":30,"msg":"hello \\"world\\"","tokens":3,"passwords":[],"user":{"email":"a@b.c"}}\n';
    expect(scrub(line)).toBe(line);
  });

  it('masks bearer tokens and URL passwords inside strings, the message included', () => {
    const line = JSON.stringify({
      msg: 'calling with Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig and redis://user:hunter2@cache:6379/0',
      url: 'postgres://app:s3cr3t@db/app',
      short: 'Bearer token',
      lower: 'bearer abcdefghijklmnopqrstuvwx',
      upper: 'BEARER abcdefghijklmnopqrstuvwx',
    });
    const out = JSON.parse(scrub(line)) as Record<string, string>;
    expect(out['msg']).toBe(
      'calling with Bearer [Redacted] and redis://user:[Redacted]@cache:6379/0',
    );
    expect(out['url']).toBe('postgres://app:[Redacted]@db/app');
    expect(out['short']).toBe('Bearer token');
    expect([out['lower'], out['upper']]).toEqual(['bearer [Redacted]', 'BEARER [Redacted]']);
  });

  it('masks sensitive query parameters in URLs, keeping the others', () => {
    const line = JSON.stringify({
      url: '/reset?token=abc123&next=%2Fhome&Access_Token=zz#frag',
      other: 'GET /cb?code=1&client_secret=s3&state=x',
    });
    const out = JSON.parse(scrub(line)) as Record<string, string>;
    expect(out['url']).toBe('/reset?token=[Redacted]&next=%2Fhome&Access_Token=[Redacted]#frag');
    expect(out['other']).toBe('GET /cb?code=1&client_secret=[Redacted]&state=x');
  });

  it('leaves text alone when scrubText is off, and escapes a censor that needs it', () => {
    const custom = createLineScrubber({
      keys: ['password'],
      suffixes: [],
      censor: 'x"\\y',
      scrubText: false,
    });
    const out = JSON.parse(custom('{"password":"p","m":"Bearer abcdefghijklmnopqrstu"}')) as Record<
      string,
      string
    >;
    expect(out).toEqual({ password: 'x"\\y', m: 'Bearer abcdefghijklmnopqrstu' });
  });

  it('always yields valid JSON without the secret, for random shapes (seeded)', () => {
    let seed = 0x2f6b1c3d;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const sensitive = [
      'password',
      'Authorization',
      'SET_COOKIE',
      'x-api-key',
      'newPassword',
      'client_secret',
      'refreshToken',
    ];
    const plain = ['id', 'name', 'headers', 'items', 'tokens', 'note', 'a-b', 'passwordPolicy'];
    const nasty = ['"', '\\', '}', ']', '{"password":"', '\n', 'é', '\u2028'];
    const plainValue = (depth: number): unknown => {
      const roll = random();
      if (depth > 4 || roll < 0.3)
        return `${pick(nasty)}v${String(Math.floor(random() * 100))}${pick(nasty)}`;
      if (roll < 0.4) return Math.floor(random() * 1000);
      if (roll < 0.5) return [plainValue(depth + 1), plainValue(depth + 1)];
      const object: Record<string, unknown> = {};
      const size = 1 + Math.floor(random() * 3);
      for (let index = 0; index < size; index += 1)
        object[`${pick(plain)}${String(index)}`] = plainValue(depth + 1);
      return object;
    };
    for (let run = 0; run < 300; run += 1) {
      const secret = `SECRET${String(run)}x`;
      const root = plainValue(0);
      const holder: Record<string, unknown> =
        typeof root === 'object' && root !== null && !Array.isArray(root)
          ? (root as Record<string, unknown>)
          : { wrap: root };
      let target = holder;
      const depth = Math.floor(random() * 6);
      for (let level = 0; level < depth; level += 1) {
        const next: Record<string, unknown> = { filler: plainValue(3) };
        target[`n${String(level)}`] = next;
        target = next;
      }
      const secretValue = random() < 0.5 ? secret : { inner: secret, list: [secret] };
      target[pick(sensitive)] = secretValue;
      const line = `${JSON.stringify(holder)}\n`;
      const out = scrub(line);
      expect(out, line).not.toContain(secret);
      expect(() => JSON.parse(out) as unknown, out).not.toThrow();
    }
  });
});

describe('key spellings and paths', () => {
  it('lists the usual spellings of a key', () => {
    expect(keySpellings('set-cookie')).toEqual(
      expect.arrayContaining(['set-cookie', 'Set-Cookie', 'SET-COOKIE', 'set_cookie', 'setCookie']),
    );
    expect(keySpellings('passwordHash')).toEqual(
      expect.arrayContaining(['passwordHash', 'password_hash', 'PASSWORD_HASH', 'passwordhash']),
    );
  });

  it('gives the top-level pino paths of the defaults plus extra keys', () => {
    const paths = redactPaths(['ssn']);
    expect(paths).toEqual(
      expect.arrayContaining([
        'password',
        'Authorization',
        '["set-cookie"]',
        '["Set-Cookie"]',
        'ssn',
        'SSN',
      ]),
    );
    expect(paths.every((path) => !path.includes('*'))).toBe(true);
    expect(() => redactPaths(['a.b'])).toThrow(LoggerError);
  });

  it('quotes keys that are not identifiers', () => {
    expect(topLevelPath('password')).toBe('password');
    expect(topLevelPath('set-cookie')).toBe('["set-cookie"]');
    expect(new Set(topLevelPaths(['token', 'token'])).size).toBe(topLevelPaths(['token']).length);
  });

  it('refuses key names that could not be matched safely', () => {
    for (const key of ['', 'a.b', 'a"b', 'a b', 'x'.repeat(129), 42]) {
      let caught: unknown;
      try {
        assertRedactKey(key);
      } catch (error) {
        caught = error;
      }
      expect(LoggerError.isInstance(caught), String(key)).toBe(true);
      expect((caught as LoggerError).code).toBe('INVALID_REDACT_KEY');
    }
    expect(() => {
      assertRedactKey('ssn_last4');
    }).not.toThrow();
  });
});

describe('URL passwords', () => {
  it('masks URL passwords when the user name is an email address or the password holds @, quotes or backslashes', () => {
    const cases: [string, string][] = [
      [
        'smtp://alice@example.com:smtp-pass-1@smtp.example.com:587',
        'smtp://alice@example.com:[Redacted]@smtp.example.com:587',
      ],
      ['postgres://app:p@ss-2@db/app', 'postgres://app:[Redacted]@db/app'],
      ['postgres://app:pa"ss-3@db/app', 'postgres://app:[Redacted]@db/app'],
      ['postgres://app:pa\\ss-4@db/app', 'postgres://app:[Redacted]@db/app'],
      ['redis://us"er:pass-5@cache:6379', 'redis://us"er:[Redacted]@cache:6379'],
      ['redis://:pass-6@cache:6379', 'redis://:[Redacted]@cache:6379'],
    ];
    for (const [input, expected] of cases) {
      const out = JSON.parse(scrub(JSON.stringify({ msg: `connect ${input} failed` }))) as {
        msg: string;
      };
      expect(out.msg, input).toBe(`connect ${expected} failed`);
    }
  });

  it('leaves URLs without a password alone, ports and paths with @ included', () => {
    for (const text of [
      'https://api.example.com:8443/users/alice@example.com',
      'smtp://alice@example.com@smtp.example.com:587/x',
      'http://host:8080?next=a@b',
      'see http://host:8080/#x@y and mailto:bob@example.org',
    ]) {
      const line = JSON.stringify({ msg: text });
      expect(scrub(line), text).toBe(line);
    }
  });

  it('runs the text patterns in linear time on hostile input (no backtracking blow-up)', async () => {
    const { Worker } = await import('node:worker_threads');
    const patterns = sensitiveTextPatterns(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_SUFFIXES);
    const sources = Object.values(patterns).map((pattern) => [pattern.source, pattern.flags]);
    // 1 MB of `a.a.a…` (a word boundary every other character) and other run-away shapes. A
    // quadratic pattern needs minutes here; the worker is stopped after a generous deadline.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const inputs = ['a.'.repeat(500000) + '://', 'a-'.repeat(500000) + '://x', '?' + '&'.repeat(1000000),
         'bearer ' + ' '.repeat(1000000), '://' + ':'.repeat(1000000), '://' + 'a@'.repeat(500000)];
       let total = 0;
       for (const [source, flags] of workerData) for (const input of inputs)
         total += input.replace(new RegExp(source, flags), 'X').length;
       parentPort.postMessage(total);`,
      { eval: true, workerData: sources },
    );
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        resolve('stalled');
      }, 15_000);
      worker.once('message', () => {
        clearTimeout(timer);
        void worker.terminate();
        resolve('done');
      });
      worker.once('error', (error) => {
        clearTimeout(timer);
        resolve(`error ${error.message}`);
      });
    });
    expect(outcome).toBe('done');
  }, 30_000);
});
