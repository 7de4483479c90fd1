import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './create-logger.js';
import type { CreateLoggerOptions } from './create-logger.js';
import { withCorrelation } from './correlation.js';
import { LoggerError } from './errors.js';

const NOW = 1_700_000_000_000;

/** A logger writing to a real stream whose JSON lines the test reads back. */
function capture(options: Partial<CreateLoggerOptions> = {}) {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  const logger = createLogger({ name: 'test', env: {}, clock: () => NOW, destination, ...options });
  const raw = (): string => chunks.join('');
  const lines = (): Record<string, unknown>[] =>
    raw()
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, raw, lines };
}

function caught(fn: () => unknown): LoggerError {
  try {
    fn();
  } catch (error) {
    if (LoggerError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a LoggerError');
}

const LISTED = [
  'password',
  'passwordHash',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'apiKey',
  'authorization',
  'cookie',
  'set-cookie',
];

describe('createLogger redaction', () => {
  it.each(LISTED)('redacts %s at the top level, in req.headers, res.headers and user', (key) => {
    const { logger, raw, lines } = capture();
    const value = `value-of-${key}-0123456789`;
    logger.info(
      {
        [key]: value,
        req: { headers: { [key]: value, host: 'h' } },
        res: { headers: { [key]: [value] } },
        user: { id: 1, [key]: value },
      },
      'm',
    );
    expect(raw()).not.toContain(value);
    expect(lines()[0]).toMatchObject({
      [key]: '[Redacted]',
      req: { headers: { [key]: '[Redacted]', host: 'h' } },
      res: { headers: { [key]: '[Redacted]' } },
      user: { id: 1, [key]: '[Redacted]' },
    });
  });

  it.each([
    'Authorization',
    'AUTHORIZATION',
    'Cookie',
    'Set-Cookie',
    'SET_COOKIE',
    'Password',
    'PASSWORD',
    'password_hash',
    'access_token',
    'refresh-token',
    'API_KEY',
    'x-api-key',
    'X-Api-Key',
    'Proxy-Authorization',
    'newPassword',
    'smtp_password',
    'jwtSecret',
    'client_secret',
    'x-auth-token',
    'csrfToken',
    'privateKey',
    'passphrase',
  ])('redacts the case and separator variant %s at every depth', (key) => {
    const { logger, raw, lines } = capture();
    const value = 'hunter2-correct-horse';
    logger.info({
      [key]: value,
      req: { headers: { [key]: value } },
      a: { b: { c: { d: { e: { [key]: value } } } } },
    });
    expect(raw()).not.toContain(value);
    expect(lines()[0]).toMatchObject({
      [key]: '[Redacted]',
      req: { headers: { [key]: '[Redacted]' } },
    });
  });

  it('never writes a secret placed at a random depth under a random spelling (seeded)', () => {
    let seed = 20_261_124;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const spellings = [
      'password',
      'PASSWORD',
      'Password',
      'password_hash',
      'AccessToken',
      'refresh-token',
      'Authorization',
      'COOKIE',
      'Set-Cookie',
      'api_key',
      'X-API-KEY',
      'dbPassword',
      'webhook_secret',
    ];
    const { logger, raw, lines } = capture();
    const secrets: string[] = [];
    for (let run = 0; run < 200; run += 1) {
      const secret = `s3cr3t-${String(run)}-value`;
      secrets.push(secret);
      let leaf: Record<string, unknown> = {
        [pick(spellings)]: random() < 0.7 ? secret : { nested: secret, list: [secret] },
        note: 'kept',
      };
      const depth = Math.floor(random() * 8);
      for (let level = 0; level < depth; level += 1)
        leaf =
          random() < 0.3
            ? { items: [leaf, { id: level }] }
            : { [`k${String(level)}`]: leaf, id: level };
      if (random() < 0.3) logger.child({ ctx: leaf }).info('from child');
      else if (random() < 0.5) logger.warn(leaf, 'object');
      else logger.error({ err: Object.assign(new Error('wrapped'), { details: leaf }) }, 'error');
    }
    const written = raw();
    for (const secret of secrets) expect(written).not.toContain(secret);
    expect(lines()).toHaveLength(200);
  });

  it('keeps keys that are merely similar, as the README states', () => {
    const { logger, lines } = capture();
    const similar = {
      tokens: 3,
      passwordPolicy: 'strong',
      secretName: 'db',
      tokenType: 'bearer',
      passwd: 'kept',
      pwd: 'kept',
      credentials: 'kept',
      auth: 'kept',
      session: 'kept',
      rawHeaders: ['Cookie', 'a=b'],
    };
    logger.info(similar);
    expect(lines()[0]).toMatchObject(similar);
  });

  it('redacts child bindings and correlation children', () => {
    const { logger, raw, lines } = capture();
    const child = logger.child({
      password: 'bound-secret',
      session: { refreshToken: 'bound-refresh' },
    });
    withCorrelation(child, 'req-42').info({ user: { apiKey: 'k-123' } }, 'hello');
    expect(raw()).not.toMatch(/bound-secret|bound-refresh|k-123/);
    expect(lines()[0]).toMatchObject({
      correlationId: 'req-42',
      password: '[Redacted]',
      session: { refreshToken: '[Redacted]' },
      msg: 'hello',
    });
  });

  it('redacts inside serialized errors under err and error', () => {
    const { logger, raw, lines } = capture();
    const error = Object.assign(new Error('upstream failed'), {
      config: { headers: { Authorization: 'Bearer abcdefghijklmnopqrstuvwxyz' } },
    });
    logger.error({ err: error }, 'first');
    logger.error({ error }, 'second');
    logger.error(error);
    expect(raw()).not.toContain('abcdefghijklmnopqrstuvwxyz');
    const [first, second, third] = lines();
    expect(first).toMatchObject({
      err: {
        type: 'Error',
        message: 'upstream failed',
        config: { headers: { Authorization: '[Redacted]' } },
      },
    });
    expect(second).toMatchObject({ error: { type: 'Error', message: 'upstream failed' } });
    expect(third).toMatchObject({ msg: 'upstream failed', err: { type: 'Error' } });
  });

  it('never throws for errors pino cannot serialize, and still writes a redacted line', () => {
    const { logger, raw, lines } = capture();
    const frozen = Object.freeze(new Error('frozen redis://:frozen-pass@cache:6379'));
    const getter = new Error('getter failed');
    Object.defineProperty(getter, 'details', {
      enumerable: true,
      get(): never {
        throw new Error('getter threw');
      },
    });
    const causeGetter = new Error('cause getter');
    Object.defineProperty(causeGetter, 'cause', {
      get(): never {
        throw new Error('cause threw');
      },
    });
    let chain = new Error('root');
    for (let index = 0; index < 20_000; index += 1) chain = new Error('wrap', { cause: chain });
    expect(() => {
      logger.error({ err: frozen }, 'frozen');
      logger.error(getter);
      logger.error({ error: causeGetter }, 'cause');
      logger.error({ err: chain }, 'deep');
    }).not.toThrow();
    expect(raw()).not.toContain('frozen-pass');
    const [first, second, third, fourth] = lines();
    expect(first).toMatchObject({
      msg: 'frozen',
      err: { type: 'Error', message: 'frozen redis://:[Redacted]@cache:6379' },
    });
    expect(second).toMatchObject({ msg: 'getter failed', err: { message: 'getter failed' } });
    expect(third).toMatchObject({ msg: 'cause', error: { message: 'cause getter' } });
    expect(fourth).toMatchObject({ msg: 'deep', err: { type: 'Error', message: 'wrap' } });
    expect(typeof (fourth?.['err'] as { stack?: unknown }).stack).toBe('string');
    expect(Object.isFrozen(frozen)).toBe(true);
    expect(Object.getOwnPropertySymbols(getter)).toEqual([]);
  });

  it('never changes the object that was logged', () => {
    const { logger } = capture();
    const payload = {
      user: { password: 'p', profile: { token: 't' } },
      list: [{ secret: 's' }],
      headers: { cookie: 'c' },
    };
    const before = structuredClone(payload);
    logger.info(payload);
    logger.info({ nested: payload });
    expect(payload).toEqual(before);
  });

  it('redacts the top level of objects interpolated with %o and %j', () => {
    const { logger, raw } = capture();
    logger.info('login %o', { password: 'interp-secret', user: 'alice' });
    logger.info('login %j', { token: 'interp-token' });
    expect(raw()).not.toMatch(/interp-secret|interp-token/);
    expect(raw()).toContain('alice');
  });

  it('masks bearer tokens and URL passwords in the message', () => {
    const { logger, lines } = capture();
    logger.info(
      'connecting to redis://default:s3cr3t-pass@cache:6379 with Bearer abcdefghijklmnopqrstuvwxyz',
    );
    expect(lines()[0]?.['msg']).toBe(
      'connecting to redis://default:[Redacted]@cache:6379 with Bearer [Redacted]',
    );
  });

  it('masks secrets in request URLs and connection errors the way frameworks log them', () => {
    const { logger, raw, lines } = capture();
    logger.info(
      {
        req: {
          method: 'GET',
          url: '/v1/auth/reset?token=reset-abc123&lang=en',
          remoteAddress: '10.0.0.1',
        },
      },
      'incoming request',
    );
    logger.error(
      { err: new Error('connect ECONNREFUSED redis://:redis-pass@cache:6379') },
      'redis down',
    );
    expect(raw()).not.toMatch(/reset-abc123|redis-pass/);
    expect(lines()[0]).toMatchObject({ req: { url: '/v1/auth/reset?token=[Redacted]&lang=en' } });
    expect(lines()[1]).toMatchObject({
      err: { message: 'connect ECONNREFUSED redis://:[Redacted]@cache:6379' },
    });
  });

  it('adds keys and paths, uses a custom censor, and can turn suffix and text matching off', () => {
    const { logger, raw, lines } = capture({
      redact: {
        keys: ['ssn'],
        paths: ['order.card.number', 'headers["x-custom"]'],
        censor: '<hidden>',
        matchSuffixes: false,
        scrubText: false,
      },
    });
    logger.info({
      ssn: '123-45-6789',
      deep: { SSN: '987' },
      order: { card: { number: '4111', brand: 'visa' } },
      headers: { 'x-custom': 'c' },
      newPassword: 'kept-np',
      password: 'p',
      msgUrl: 'redis://u:kept@h',
    });
    expect(raw()).not.toMatch(/123-45-6789|987|4111/);
    expect(lines()[0]).toMatchObject({
      ssn: '<hidden>',
      deep: { SSN: '<hidden>' },
      order: { card: { number: '<hidden>', brand: 'visa' } },
      headers: { 'x-custom': '<hidden>' },
      newPassword: 'kept-np',
      password: '<hidden>',
      msgUrl: 'redis://u:kept@h',
    });
  });

  it('cannot be configured to drop the default keys', () => {
    const { logger, lines } = capture({ redact: { keys: [], paths: [] } });
    logger.info({ password: 'p' });
    expect(lines()[0]).toMatchObject({ password: '[Redacted]' });
  });
});

describe('createLogger fields and levels', () => {
  it('writes name, time from the clock, pid, hostname and base fields', () => {
    const { logger, lines } = capture({ base: { service: 'api', region: 'eu' } });
    logger.info('hi');
    expect(lines()[0]).toMatchObject({
      level: 30,
      time: NOW,
      name: 'test',
      service: 'api',
      region: 'eu',
      msg: 'hi',
    });
    expect(typeof lines()[0]?.['pid']).toBe('number');
    expect(typeof lines()[0]?.['hostname']).toBe('string');
  });

  it('keeps lines valid JSON when the clock returns a non-finite number', () => {
    const { logger, lines } = capture({ clock: () => Number.NaN });
    logger.info('still json');
    expect(typeof lines()[0]?.['time']).toBe('number');
    expect(Number.isFinite(lines()[0]?.['time'])).toBe(true);
  });

  it('writes only at or above the level', () => {
    const { logger, lines } = capture({ level: 'warn' });
    logger.info('no');
    logger.warn('yes');
    logger.error('also');
    expect(lines().map((line) => line['msg'])).toEqual(['yes', 'also']);
    const silent = capture({ level: 'silent' });
    silent.logger.fatal('nothing');
    expect(silent.raw()).toBe('');
  });

  it('defaults to info and to the real clock', () => {
    const chunks: string[] = [];
    const logger = createLogger({
      name: 'x',
      env: {},
      destination: { write: (line: string) => void chunks.push(line) },
    });
    logger.debug('hidden');
    logger.info('shown');
    expect(chunks).toHaveLength(1);
    expect(typeof (JSON.parse(chunks[0]!) as { time: unknown }).time).toBe('number');
  });
});

describe('createLogger validation', () => {
  it('refuses a missing name, an unknown level and bad redact options with typed errors', () => {
    expect(caught(() => createLogger({ name: '' })).code).toBe('INVALID_OPTION');
    expect(caught(() => createLogger(null as unknown as CreateLoggerOptions)).option).toBe(
      'options',
    );
    const level = caught(() => createLogger({ name: 'x', level: 'verbose' as 'info' }));
    expect([level.code, level.option]).toEqual(['INVALID_LEVEL', 'level']);
    expect(caught(() => createLogger({ name: 'x', redact: { keys: ['a.b'] } })).code).toBe(
      'INVALID_REDACT_KEY',
    );
    expect(
      caught(() => createLogger({ name: 'x', redact: { keys: 'password' as unknown as string[] } }))
        .option,
    ).toBe('redact.keys');
    expect(
      caught(() => createLogger({ name: 'x', redact: { paths: 'a' as unknown as string[] } }))
        .option,
    ).toBe('redact.paths');
    expect(
      caught(() => createLogger({ name: 'x', redact: { censor: 1 as unknown as string } })).option,
    ).toBe('redact.censor');
    expect(
      caught(() => createLogger({ name: 'x', clock: 5 as unknown as () => number })).option,
    ).toBe('clock');
  });

  it('refuses options of the wrong type when called, instead of throwing on every line later', () => {
    const wrong: [string, Partial<CreateLoggerOptions>][] = [
      ['destination', { destination: {} as unknown as { write(line: string): void } }],
      ['destination', { destination: 5 as unknown as { write(line: string): void } }],
      ['pretty', { pretty: 'false' as unknown as boolean }],
      ['requirePretty', { requirePretty: 5 as unknown as (id: string) => unknown }],
      ['base', { base: 'abc' as unknown as Record<string, unknown> }],
      ['env', { env: 'production' as unknown as Record<string, string> }],
      ['redact', { redact: 'password' as unknown as { keys: string[] } }],
      ['redact.matchSuffixes', { redact: { matchSuffixes: 'no' as unknown as boolean } }],
      ['redact.scrubText', { redact: { scrubText: 0 as unknown as boolean } }],
    ];
    for (const [option, options] of wrong) {
      const error = caught(() => createLogger({ name: 'x', env: {}, ...options }));
      expect([error.code, error.option], option).toEqual(['INVALID_OPTION', option]);
    }
  });

  it("refuses an invalid path with INVALID_REDACT_PATH, keeping pino's error as the cause", () => {
    for (const path of ['a..b', 'a[', '', '   ']) {
      const error = caught(() => createLogger({ name: 'x', redact: { paths: [path] } }));
      expect(error.code, path).toBe('INVALID_REDACT_PATH');
    }
    expect(
      caught(() => createLogger({ name: 'x', redact: { paths: ['a..b'] } })).cause,
    ).toBeInstanceOf(Error);
  });

  it('accepts paths whose first segment is an Object.prototype member', () => {
    const { logger, lines } = capture({ redact: { paths: ['constructor.card'] } });
    logger.info({ constructor: { card: '4111' } });
    expect(lines()[0]).toMatchObject({ constructor: { card: '[Redacted]' } });
  });
});

describe('createLogger pretty output', () => {
  it('prettifies in development when pino-pretty resolves, after redaction', () => {
    const { logger, raw } = capture({ env: { NODE_ENV: 'development' } });
    logger.info({ user: { Password: 'pretty-secret' } }, 'pretty line');
    expect(raw()).toContain('INFO');
    expect(raw()).toContain('pretty line');
    expect(raw()).toContain('[Redacted]');
    expect(raw()).not.toContain('pretty-secret');
    expect(() => JSON.parse(raw()) as unknown).toThrow();
  });

  it('writes JSON by default when NODE_ENV is not development', () => {
    const { logger, lines } = capture({ env: {} });
    logger.info('json');
    expect(lines()).toHaveLength(1);
  });

  it('writes JSON and one warning when pretty is asked for in production', () => {
    const { logger, lines } = capture({ env: { NODE_ENV: 'production' }, pretty: true });
    logger.info('after');
    expect(lines()).toMatchObject([
      { level: 40, loggerWarning: 'PRETTY_DISABLED_IN_PRODUCTION' },
      { msg: 'after' },
    ]);
  });

  it('writes JSON and one warning when pino-pretty is not installed', () => {
    const requirePretty = (id: string): never => {
      throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    };
    const { logger, lines } = capture({ env: { NODE_ENV: 'development' }, requirePretty });
    logger.info({ token: 't' }, 'after');
    expect(lines()).toMatchObject([
      { level: 40, loggerWarning: 'PRETTY_NOT_INSTALLED' },
      { msg: 'after', token: '[Redacted]' },
    ]);
  });

  it.each([
    [
      'a module that throws while loading',
      (): never => {
        throw new SyntaxError('bad');
      },
    ],
    ['a module without prettyFactory', (): unknown => ({})],
    [
      'a prettyFactory that throws',
      (): unknown => ({
        prettyFactory: () => {
          throw new TypeError('nope');
        },
      }),
    ],
  ])('writes JSON and one warning for %s', (_label, requirePretty) => {
    const { logger, lines } = capture({ pretty: true, requirePretty });
    logger.info('after');
    expect(lines()).toMatchObject([
      { level: 40, loggerWarning: 'PRETTY_LOAD_FAILED' },
      { msg: 'after' },
    ]);
  });
});

describe('createLogger line bounds', () => {
  it('cuts a string longer than maxStringLength (default 16_384) and says how much was cut', () => {
    const { logger, raw, lines } = capture();
    const header = 'h'.repeat(100_000);
    logger.child({ bound: 'b'.repeat(20_000) }).info({ req: { headers: { 'x-evil': header } } });
    logger.info('m'.repeat(30_000));
    expect(raw().length).toBeLessThan(60_000);
    const [first, second] = lines();
    expect(first).toMatchObject({
      req: { headers: { 'x-evil': `${'h'.repeat(16_384)}...[truncated 83616 chars]` } },
      bound: `${'b'.repeat(16_384)}...[truncated 3616 chars]`,
    });
    expect(second?.['msg']).toBe(`${'m'.repeat(16_384)}...[truncated 13616 chars]`);
  });

  it('cuts long keys, and strings to a smaller maxStringLength, keeping the line valid JSON', () => {
    const { logger, lines } = capture({ maxStringLength: 16 });
    logger.info({ ['k'.repeat(40)]: 'short', quoted: '"\\\n'.repeat(10) });
    const [line] = lines();
    expect(line?.[`${'k'.repeat(16)}...[truncated 24 chars]`]).toBe('short');
    expect(line?.['quoted']).toBe(`${'"\\\n'.repeat(5)}"...[truncated 14 chars]`);
  });

  it('never splits a surrogate pair when cutting', () => {
    const { logger, raw, lines } = capture({ maxStringLength: 17 });
    logger.info({ emoji: '😀'.repeat(20) });
    expect(lines()[0]?.['emoji']).toBe(`${'😀'.repeat(8)}...[truncated 24 chars]`);
    expect(raw()).not.toMatch(/\\ud83d"/i);
  });

  it('bounds after redaction, so truncation never reveals part of a secret', () => {
    const { logger, raw, lines } = capture({ maxStringLength: 100 });
    const token = 'QWERTYUIOPASDFGHJKLZXCVBNM0123456789';
    logger.info({
      password: 'p'.repeat(50_000),
      // Cut before the redaction ran, these would leave a fragment of the secret that no
      // pattern matches any more: 2 characters of the token, 9 of the URL password.
      note: `${'a'.repeat(90)} Bearer ${token}`,
      url: `${'u'.repeat(80)} smtp://user:hunter2hunter2@relay.example.com`,
    });
    const [line] = lines();
    expect(line).toMatchObject({ password: '[Redacted]' });
    expect(raw()).not.toMatch(/QW|hunter|ppp/);
    expect(line?.['note']).toBe(`${'a'.repeat(90)} Bearer [R...[truncated 8 chars]`);
    expect(line?.['url']).toBe(`${'u'.repeat(80)} smtp://user:[Redact...[truncated 21 chars]`);
  });

  it('replaces the largest top-level values when the line is still longer than maxLineLength', () => {
    const { logger, raw, lines } = capture({ maxLineLength: 10_000 });
    const items = Array.from({ length: 50_000 }, (_, n) => n);
    logger.info({ small: 'kept', items, nested: { list: items.slice(0, 100) } }, 'big');
    const written = raw().split('\n')[0] ?? '';
    expect(written.length).toBeLessThanOrEqual(10_000);
    const [line] = lines();
    expect(line).toMatchObject({
      level: 30,
      time: NOW,
      name: 'test',
      small: 'kept',
      msg: 'big',
      nested: { list: items.slice(0, 100) },
    });
    expect(line?.['items']).toBe(`[truncated ${JSON.stringify(items).length} chars]`);
  });

  it('drops fields when many small fields overflow the line, keeping level, time and msg', () => {
    const { logger, raw, lines } = capture({ maxLineLength: 4_096 });
    const many = Object.fromEntries(Array.from({ length: 20_000 }, (_, n) => [`f${n}`, n]));
    logger.warn(many, 'flood');
    const written = raw().split('\n')[0] ?? '';
    expect(written.length).toBeLessThanOrEqual(4_096);
    const [line] = lines();
    expect(line).toMatchObject({ level: 40, time: NOW, msg: 'flood' });
    expect(line?.['logTruncated']).toMatch(/^\d+ fields \(\d+ chars\) dropped$/);
  });

  it('writes ordinary lines exactly as before', () => {
    const bounded = capture();
    const unbounded = capture({
      maxStringLength: Number.MAX_SAFE_INTEGER,
      maxLineLength: Number.MAX_SAFE_INTEGER,
    });
    for (const { logger } of [bounded, unbounded]) {
      logger.info({ user: { id: 1, email: 'a***@example.com' }, password: 'x' }, 'signed in');
      logger.error({ err: new Error('boom') }, 'failed');
    }
    expect(bounded.raw()).toBe(unbounded.raw());
  });

  it('refuses a non-finite, fractional, too small or non-numeric bound with a typed error', () => {
    const wrong: ['maxStringLength' | 'maxLineLength', unknown][] = [];
    for (const value of [Number.NaN, Infinity, -Infinity, -1, 0, 1.5, '100', null]) {
      wrong.push(['maxStringLength', value], ['maxLineLength', value]);
    }
    wrong.push(['maxStringLength', 15], ['maxLineLength', 1_023]);
    for (const [option, value] of wrong) {
      const error = caught(() => createLogger({ name: 'x', env: {}, [option]: value as number }));
      expect([error.code, error.option], `${option}: ${String(value)}`).toEqual([
        'INVALID_OPTION',
        option,
      ]);
      expect(error.message).toContain(option);
    }
    expect(() =>
      createLogger({ name: 'x', maxStringLength: 16, maxLineLength: 1_024 }),
    ).not.toThrow();
  });
});
