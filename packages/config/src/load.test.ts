import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { bool, duration, list, port, url } from './coerce.js';
import { devDefault, devOptional } from './dev-default.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { loadConfig, modeFromNodeEnv } from './load.js';
import { Secret, secret } from './secret.js';

const STRONG = 'vQ8#nL2$wZ5!rT9@kM4&xB7';
const OTHER_STRONG = 'Hq3!Zp8$Lm1#Vr6@Tn4&Ws9';
const directory = mkdtempSync(join(tmpdir(), 'postern-config-'));
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

function file(name: string, content: string): string {
  const path = join(directory, name);
  writeFileSync(path, content);
  return path;
}

function failure(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (ConfigError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const codes = (issues: readonly ConfigIssue[]): [string, string][] =>
  issues.map((issue) => [issue.env, issue.code]);

describe('loadConfig: values and shape', () => {
  const shape = {
    port: port(),
    debug: bool().default(false),
    logLevel: z.enum(['debug', 'info', 'warn']).default('info'),
    smtp: { host: z.string(), port: port(), tls: { enabled: bool() } },
    timeoutMs: duration(),
    relays: list(url()),
  };
  const env = {
    PORT: '8080',
    SMTP_HOST: 'mail.example.com',
    SMTP_PORT: '587',
    SMTP_TLS_ENABLED: 'yes',
    TIMEOUT_MS: '30s',
    RELAYS: 'https://a.example.com, https://b.example.com',
  };

  it('returns typed, nested values with defaults applied', () => {
    const config = loadConfig(shape, { env });
    expect({ ...config }).toEqual({
      port: 8080,
      debug: false,
      logLevel: 'info',
      smtp: { host: 'mail.example.com', port: 587, tls: { enabled: true } },
      timeoutMs: 30_000,
      relays: ['https://a.example.com', 'https://b.example.com'],
    });
    const typed: number = config.smtp.port;
    expect(typed).toBe(587);
  });

  it('freezes the result all the way down', () => {
    const config = loadConfig(shape, { env });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.smtp)).toBe(true);
    expect(Object.isFrozen(config.smtp.tls)).toBe(true);
    expect(Object.isFrozen(config.relays)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('keeps warnings off the enumerable keys', () => {
    const config = loadConfig(shape, { env });
    expect(config.warnings).toEqual([]);
    expect(Object.keys(config)).not.toContain('warnings');
  });

  it('reads every variable under a prefix', () => {
    const prefixed = Object.fromEntries(
      Object.entries(env).map(([key, value]) => [`APP_${key}`, value]),
    );
    expect(loadConfig(shape, { env: prefixed, prefix: 'APP_' }).smtp.host).toBe('mail.example.com');
  });

  it('lists every problem at once, each with its variable and path', () => {
    const error = failure(() =>
      loadConfig(shape, {
        env: {
          PORT: '0x10',
          SMTP_PORT: '',
          SMTP_TLS_ENABLED: 'maybe',
          TIMEOUT_MS: '10 m',
          RELAYS: 'http:/a,,ftp://b',
        },
      }),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(
      error.issues.map((issue) => [issue.env, issue.path.join('.'), issue.code, issue.message]),
    ).toEqual([
      ['PORT', 'port', 'INVALID', 'must be a port number between 1 and 65535'],
      ['SMTP_HOST', 'smtp.host', 'MISSING', 'is not set'],
      ['SMTP_PORT', 'smtp.port', 'MISSING', 'is set but empty'],
      [
        'SMTP_TLS_ENABLED',
        'smtp.tls.enabled',
        'INVALID',
        'must be one of true, false, 1, 0, yes, no',
      ],
      [
        'TIMEOUT_MS',
        'timeoutMs',
        'INVALID',
        'must be a duration such as 250ms, 30s, 15m, 12h or 7d',
      ],
      ['RELAYS', 'relays.0', 'INVALID', 'must be written as http://…'],
      ['RELAYS', 'relays.1', 'INVALID', 'is empty'],
      ['RELAYS', 'relays.2', 'INVALID', 'must use one of these protocols: http, https'],
    ]);
    expect(error.message.split('\n')).toEqual([
      'Invalid configuration (8 problems):',
      '  - PORT (port): must be a port number between 1 and 65535',
      '  - SMTP_HOST (smtp.host): is not set',
      '  - SMTP_PORT (smtp.port): is set but empty',
      '  - SMTP_TLS_ENABLED (smtp.tls.enabled): must be one of true, false, 1, 0, yes, no',
      '  - TIMEOUT_MS (timeoutMs): must be a duration such as 250ms, 30s, 15m, 12h or 7d',
      '  - RELAYS (relays.0): must be written as http://…',
      '  - RELAYS (relays.1): is empty',
      '  - RELAYS (relays.2): must use one of these protocols: http, https',
    ]);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ConfigError');
  });

  it('says "1 problem" for one', () => {
    expect(failure(() => loadConfig({ port: port() }, { env: {} })).message).toBe(
      'Invalid configuration (1 problem):\n  - PORT (port): is not set',
    );
  });

  it('treats empty and whitespace-only values as not set, so defaults apply', () => {
    const config = loadConfig(
      { debug: bool().default(true), name: z.string().default('x') },
      { env: { DEBUG: '', NAME: '   ' } },
    );
    expect(config.debug).toBe(true);
    expect(config.name).toBe('x');
  });

  it('passes empty strings through with emptyIsMissing: false', () => {
    expect(
      loadConfig({ name: z.string() }, { env: { NAME: '' }, emptyIsMissing: false }).name,
    ).toBe('');
    expect(
      failure(() => loadConfig({ port: port() }, { env: { PORT: ' ' }, emptyIsMissing: false }))
        .issues[0]?.code,
    ).toBe('INVALID');
  });

  it('returns values a schema builds, freezing what can be frozen', () => {
    const config = loadConfig(
      {
        signingKey: z.string().transform((text) => Buffer.from(text, 'base64')),
        limits: z
          .string()
          .transform((text) => JSON.parse(text) as { perMinute: number; tiers: number[] }),
      },
      {
        env: {
          SIGNING_KEY: Buffer.from('key-bytes').toString('base64'),
          LIMITS: '{"perMinute":5,"tiers":[1,2]}',
        },
      },
    );
    expect(config.signingKey.toString()).toBe('key-bytes');
    expect(config.limits.perMinute).toBe(5);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(Object.isFrozen(config.limits.tiers)).toBe(true);
  });

  it('keeps optional fields as undefined', () => {
    const config = loadConfig({ sentryDsn: url().optional() }, { env: {} });
    expect(config.sentryDsn).toBeUndefined();
    expect('sentryDsn' in config).toBe(true);
  });

  it('does not modify the env it reads', () => {
    const given = { PORT: '80' };
    loadConfig({ port: port(), debug: bool().default(false) }, { env: given });
    expect(given).toEqual({ PORT: '80' });
  });

  it('reads process.env by default', () => {
    const name = `POSTERN_CONFIG_TEST_${String(process.pid)}`;
    process.env[name] = '42';
    try {
      expect(loadConfig({ [name]: port() }, {})[name]).toBe(42);
    } finally {
      delete process.env[name];
    }
  });

  it('accepts ordinary zod schemas for strings, enums and refinements', () => {
    const config = loadConfig(
      { region: z.enum(['eu', 'us']), name: z.string().min(3) },
      { env: { REGION: 'eu', NAME: 'postern' } },
    );
    expect(config).toMatchObject({ region: 'eu', name: 'postern' });
    const error = failure(() =>
      loadConfig({ region: z.enum(['eu', 'us']) }, { env: { REGION: 'mars' } }),
    );
    expect(error.issues[0]?.message).toMatch(/expected one of/);
  });
});

describe('loadConfig: shape errors', () => {
  it('refuses the reserved key "warnings"', () => {
    const error = failure(() => loadConfig({ warnings: z.string() }, { env: {} }));
    expect(error.code).toBe('SHAPE_INVALID');
    expect(error.issues).toEqual([]);
  });

  it('refuses two keys that read one variable', () => {
    const error = failure(() =>
      loadConfig({ smtpPort: port(), smtp: { port: port() } }, { env: {} }),
    );
    expect(error.code).toBe('SHAPE_INVALID');
    expect(error.message).toBe('Config shape keys "smtpPort" and "smtp.port" both read SMTP_PORT');
  });

  it('refuses an asynchronous schema, which a synchronous load cannot run', () => {
    const error = failure(() =>
      loadConfig(
        { name: z.string().refine(async () => Promise.resolve(true)) },
        { env: { NAME: 'x' } },
      ),
    );
    expect(error.code).toBe('SHAPE_INVALID');
    expect(error.message).toBe(
      'Config shape key "name" has an asynchronous schema; loadConfig is synchronous',
    );
  });

  it('refuses values that are neither schemas nor nested shapes', () => {
    const error = failure(() => loadConfig({ port: 8080 } as never, { env: {} }));
    expect(error.code).toBe('SHAPE_INVALID');
  });
});

describe('loadConfig: mode', () => {
  it.each([
    [undefined, 'development'],
    ['', 'development'],
    ['development', 'development'],
    ['test', 'development'],
    ['dev', 'development'],
    ['production', 'production'],
    ['PRODUCTION', 'production'],
    [' production ', 'production'],
    ['staging', 'production'],
    ['prod', 'production'],
  ])('NODE_ENV=%j means %s', (nodeEnv, mode) => {
    expect(modeFromNodeEnv(nodeEnv)).toBe(mode);
  });

  it('follows NODE_ENV from the env when no mode is given', () => {
    const shape = { key: secret({ default: 'dev-only-value-123' }) };
    expect(loadConfig(shape, { env: {} }).warnings.map((warning) => warning.code)).toEqual([
      'SECRET_DEFAULT',
    ]);
    expect(
      failure(() => loadConfig(shape, { env: { NODE_ENV: 'production' } })).issues[0]?.code,
    ).toBe('SECRET_DEFAULT');
  });

  it('lets an explicit mode override NODE_ENV', () => {
    const shape = { key: secret({ default: 'dev-only-value-123' }) };
    expect(
      loadConfig(shape, { env: { NODE_ENV: 'production' }, mode: 'development' }).key.reveal(),
    ).toBe('dev-only-value-123');
    expect(
      failure(() => loadConfig(shape, { env: { NODE_ENV: 'development' }, mode: 'production' }))
        .issues[0]?.code,
    ).toBe('SECRET_DEFAULT');
  });
});

describe('loadConfig: secrets in production', () => {
  const shape = {
    jwtSecret: secret(),
    sessionSecret: secret({ default: 'dev-session-secret-value' }),
  };

  it('accepts strong secrets', () => {
    const config = loadConfig(shape, {
      mode: 'production',
      env: { JWT_SECRET: STRONG, SESSION_SECRET: OTHER_STRONG },
    });
    expect(config.jwtSecret.reveal()).toBe(STRONG);
    expect(config.warnings).toEqual([]);
  });

  it.each([
    [
      'missing',
      {},
      [
        ['JWT_SECRET', 'MISSING'],
        ['SESSION_SECRET', 'SECRET_DEFAULT'],
      ],
    ],
    [
      'set to its default',
      { JWT_SECRET: STRONG, SESSION_SECRET: 'dev-session-secret-value' },
      [['SESSION_SECRET', 'SECRET_DEFAULT']],
    ],
    [
      'a known default',
      { JWT_SECRET: 'changeme', SESSION_SECRET: 'MinioAdmin' },
      [
        ['JWT_SECRET', 'SECRET_KNOWN_DEFAULT'],
        ['SESSION_SECRET', 'SECRET_KNOWN_DEFAULT'],
      ],
    ],
    [
      'a placeholder',
      { JWT_SECRET: 'your-secret-key', SESSION_SECRET: OTHER_STRONG },
      [['JWT_SECRET', 'SECRET_KNOWN_DEFAULT']],
    ],
    [
      'one repeated character',
      { JWT_SECRET: 'a'.repeat(40), SESSION_SECRET: OTHER_STRONG },
      [['JWT_SECRET', 'SECRET_REPEATED']],
    ],
    [
      'too short',
      { JWT_SECRET: 'Zq8!vL2$', SESSION_SECRET: OTHER_STRONG },
      [['JWT_SECRET', 'SECRET_TOO_SHORT']],
    ],
    [
      'low entropy',
      { JWT_SECRET: 'abcabcabcabcabcabcab', SESSION_SECRET: OTHER_STRONG },
      [['JWT_SECRET', 'SECRET_LOW_ENTROPY']],
    ],
  ])('refuses a secret that is %s', (_case, env, expected) => {
    expect(codes(failure(() => loadConfig(shape, { mode: 'production', env })).issues)).toEqual(
      expected,
    );
  });

  it('refuses a missing secret whose default comes from zod prefault', () => {
    const error = failure(() =>
      loadConfig({ key: secret().prefault(STRONG) }, { mode: 'production', env: {} }),
    );
    expect(codes(error.issues)).toEqual([['KEY', 'SECRET_DEFAULT']]);
  });

  it('honours per-secret minLength and minEntropyBits', () => {
    const config = loadConfig(
      { pin: secret({ minLength: 6, minEntropyBits: 12 }) },
      { mode: 'production', env: { PIN: '830514' } },
    );
    expect(config.pin.reveal()).toBe('830514');
  });

  it('leaves an explicitly optional secret undefined', () => {
    expect(
      loadConfig({ relayPassword: secret().optional() }, { mode: 'production', env: {} })
        .relayPassword,
    ).toBeUndefined();
  });
});

describe('loadConfig: secrets in development', () => {
  it('returns weaknesses as warnings naming the variable, never the value', () => {
    const config = loadConfig(
      { jwtSecret: secret(), apiKey: secret({ default: 'local-api-key-value' }), short: secret() },
      { mode: 'development', env: { JWT_SECRET: 'changeme', SHORT: 'Zq8!vL2$' } },
    );
    expect(config.jwtSecret.reveal()).toBe('changeme');
    expect(config.apiKey.reveal()).toBe('local-api-key-value');
    expect(config.warnings.map((warning) => [warning.env, warning.code])).toEqual([
      ['JWT_SECRET', 'SECRET_KNOWN_DEFAULT'],
      ['API_KEY', 'SECRET_DEFAULT'],
      ['SHORT', 'SECRET_TOO_SHORT'],
    ]);
    const text = JSON.stringify(config.warnings);
    for (const value of ['changeme', 'local-api-key-value', 'Zq8!vL2$'])
      expect(text).not.toContain(value);
    expect(Object.isFrozen(config.warnings)).toBe(true);
  });

  it('still refuses a required secret that is missing', () => {
    expect(
      codes(failure(() => loadConfig({ key: secret() }, { mode: 'development', env: {} })).issues),
    ).toEqual([['KEY', 'MISSING']]);
  });
});

describe('loadConfig: no secret value ever leaks', () => {
  const shape = {
    jwtSecret: secret(),
    dbPassword: secret(),
    // A refinement that (badly) echoes the value: the secret must still not reach the error.
    apiKey: secret().refine((value) => value.reveal().startsWith('sk_'), { message: 'bad key' }),
    port: port(),
  };
  const env = { JWT_SECRET: STRONG, DB_PASSWORD: 'password', API_KEY: OTHER_STRONG, PORT: STRONG };

  it('keeps values out of ConfigError.message, issues, warnings, JSON and inspect', () => {
    const error = failure(() => loadConfig(shape, { mode: 'production', env }));
    expect(codes(error.issues)).toEqual([
      ['DB_PASSWORD', 'SECRET_KNOWN_DEFAULT'],
      ['API_KEY', 'INVALID'],
      ['PORT', 'INVALID'],
    ]);
    const surfaces = [
      error.message,
      JSON.stringify(error.issues),
      JSON.stringify(error.warnings),
      inspect(error, { depth: 10 }),
      String(error.stack),
    ];
    for (const surface of surfaces) {
      for (const value of [STRONG, OTHER_STRONG, 'password']) expect(surface).not.toContain(value);
    }
  });

  it('redacts a secret value that a custom message repeats', () => {
    const leaky = {
      token: secret(),
      mirror: z.string().refine(() => false, { message: `must differ from ${STRONG}` }),
    };
    const error = failure(() =>
      loadConfig(leaky, { mode: 'development', env: { TOKEN: STRONG, MIRROR: 'x' } }),
    );
    expect(error.issues[0]?.message).toBe('must differ from [redacted]');
  });

  it('keeps values out of JSON.stringify(config) and util.inspect(config)', () => {
    const config = loadConfig(
      { nested: { token: secret() }, token: secret() },
      { mode: 'production', env: { NESTED_TOKEN: STRONG, TOKEN: OTHER_STRONG } },
    );
    expect(JSON.stringify(config)).toBe('{"nested":{"token":"[redacted]"},"token":"[redacted]"}');
    expect(inspect(config, { depth: 10, showHidden: true })).not.toMatch(
      new RegExp(`${STRONG.slice(0, 6)}|${OTHER_STRONG.slice(0, 6)}`.replace(/[$#!@&]/g, '\\$&')),
    );
    expect(Secret.isInstance(config.nested.token)).toBe(true);
  });
});

describe('loadConfig: NAME_FILE', () => {
  it('reads a value from a file, trimming exactly one trailing newline', () => {
    const config = loadConfig(
      { jwtSecret: secret(), dbPassword: secret(), name: z.string() },
      {
        mode: 'production',
        env: {
          JWT_SECRET_FILE: file('jwt', `${STRONG}\n`),
          DB_PASSWORD_FILE: file('db', `${OTHER_STRONG}\r\n`),
          NAME_FILE: file('name', 'two-lines\n\n'),
        },
      },
    );
    expect(config.jwtSecret.reveal()).toBe(STRONG);
    expect(config.dbPassword.reveal()).toBe(OTHER_STRONG);
    expect(config.name).toBe('two-lines\n');
  });

  it('reports a missing file', () => {
    const error = failure(() =>
      loadConfig({ key: secret() }, { env: { KEY_FILE: join(directory, 'absent') } }),
    );
    expect(error.issues).toEqual([
      {
        code: 'FILE_MISSING',
        path: ['key'],
        env: 'KEY_FILE',
        message: `names a file that does not exist (${join(directory, 'absent')})`,
      },
    ]);
  });

  it('reports an unreadable file', () => {
    const unreadable = join(directory, 'a-directory');
    mkdirSync(unreadable, { recursive: true });
    const error = failure(() => loadConfig({ key: secret() }, { env: { KEY_FILE: unreadable } }));
    expect(error.issues[0]).toMatchObject({ code: 'FILE_UNREADABLE', env: 'KEY_FILE' });
    expect(error.issues[0]?.message).toMatch(/cannot be read .*EISDIR/);
  });

  it('refuses NAME and NAME_FILE set together', () => {
    const error = failure(() =>
      loadConfig({ key: secret() }, { env: { KEY: STRONG, KEY_FILE: file('key', STRONG) } }),
    );
    expect(error.issues).toEqual([
      {
        code: 'FILE_CONFLICT',
        path: ['key'],
        env: 'KEY',
        message: 'is set and so is KEY_FILE; set only one',
      },
    ]);
    expect(error.message).not.toContain(STRONG);
  });

  it('treats an empty file as not set', () => {
    const error = failure(() =>
      loadConfig({ key: secret() }, { env: { KEY_FILE: file('empty', '\n') } }),
    );
    expect(codes(error.issues)).toEqual([['KEY', 'MISSING']]);
  });

  it('applies production checks to a value read from a file', () => {
    const error = failure(() =>
      loadConfig(
        { key: secret() },
        { mode: 'production', env: { KEY_FILE: file('weak', 'changeme\n') } },
      ),
    );
    expect(codes(error.issues)).toEqual([['KEY', 'SECRET_KNOWN_DEFAULT']]);
  });
});

describe('loadConfig: .env files', () => {
  const shape = { port: port(), host: z.string(), quoted: z.string().default('none') };

  it('reads values from a .env file, with env winning', () => {
    const path = file('.env', 'PORT=3000\nHOST=from-file\n# comment\nQUOTED="a b # c"\n');
    const config = loadConfig(shape, { env: { HOST: 'from-env' }, envFile: path });
    expect({ ...config }).toEqual({ port: 3000, host: 'from-env', quoted: 'a b # c' });
  });

  it('lets later files override earlier ones', () => {
    const base = file('base.env', 'PORT=1000\nHOST=base\n');
    const local = file('local.env', 'PORT=2000\n');
    expect({ ...loadConfig(shape, { env: {}, envFile: [base, local] }) }).toMatchObject({
      port: 2000,
      host: 'base',
    });
  });

  it('skips a missing file', () => {
    expect(
      loadConfig(shape, { env: { PORT: '1', HOST: 'h' }, envFile: join(directory, 'no.env') }).port,
    ).toBe(1);
  });

  it('reports a file that exists but cannot be read', () => {
    const unreadable = join(directory, 'env-directory');
    mkdirSync(unreadable, { recursive: true });
    const error = failure(() =>
      loadConfig(shape, { env: { PORT: '1', HOST: 'h' }, envFile: unreadable }),
    );
    expect(codes(error.issues)).toEqual([[unreadable, 'ENV_FILE_UNREADABLE']]);
  });

  it('never writes to process.env', () => {
    const name = `POSTERN_DOTENV_${String(process.pid)}`;
    loadConfig({ [name]: z.string() }, { env: {}, envFile: file('leak.env', `${name}=x\n`) });
    expect(process.env[name]).toBeUndefined();
  });

  it('reads NODE_ENV from the file to pick the mode', () => {
    const path = file('prod.env', 'NODE_ENV=production\n');
    const error = failure(() =>
      loadConfig({ key: secret({ default: 'dev-only-value-123' }) }, { env: {}, envFile: path }),
    );
    expect(codes(error.issues)).toEqual([['KEY', 'SECRET_DEFAULT']]);
  });
});

describe('loadConfig: unknown prefixed variables', () => {
  it('warns about APP_* variables the shape does not read (typos)', () => {
    const config = loadConfig(
      { smtp: { port: port() }, key: secret({ minLength: 1, minEntropyBits: 0 }) },
      {
        prefix: 'APP_',
        env: {
          APP_SMTP_PORT: '25',
          APP_SMTP_PROT: '26',
          APP_KEY_FILE: file('k', 'xyz'),
          OTHER: '1',
        },
      },
    );
    expect(config.warnings.map((warning) => [warning.env, warning.code])).toEqual([
      ['APP_SMTP_PROT', 'UNKNOWN_VARIABLE'],
    ]);
  });
});

describe('ConfigError', () => {
  it('is recognised across copies by its markers', () => {
    const error = ConfigError.fromIssues([
      { code: 'MISSING', path: ['port'], env: 'PORT', message: 'is not set' },
    ]);
    expect(ConfigError.isInstance(error)).toBe(true);
    const copy = {
      ...error,
      [Symbol.for('postern.error')]: true,
      [Symbol.for('postern.config.error')]: true,
    };
    expect(ConfigError.isInstance(copy)).toBe(true);
    expect(ConfigError.isInstance(new Error('x'))).toBe(false);
    expect(ConfigError.isInstance({ [Symbol.for('postern.error')]: true })).toBe(false);
    expect(ConfigError.isInstance(undefined)).toBe(false);
  });

  it('freezes its issues', () => {
    const error = ConfigError.fromIssues([
      { code: 'MISSING', path: ['port'], env: 'PORT', message: 'is not set' },
    ]);
    expect(Object.isFrozen(error.issues)).toBe(true);
  });
});

describe('loadConfig: devDefault', () => {
  const shape = {
    publicUrl: devDefault(url(), 'http://localhost:3000'),
    token: devDefault(secret(), 'dev-token-for-local-use'),
  };

  it('applies outside production, parsed like a real value', () => {
    const config = loadConfig(shape, { mode: 'development', env: {} });
    expect(config.publicUrl).toBe('http://localhost:3000');
    expect(config.token.reveal()).toBe('dev-token-for-local-use');
    expect(config.warnings.map((warning) => [warning.env, warning.code])).toEqual([
      ['TOKEN', 'SECRET_DEFAULT'],
    ]);
  });

  it('does not apply in production: the variable is required there', () => {
    const error = failure(() => loadConfig(shape, { mode: 'production', env: { TOKEN: STRONG } }));
    expect(error.issues).toEqual([
      {
        code: 'MISSING',
        path: ['publicUrl'],
        env: 'PUBLIC_URL',
        message: 'is not set (its development default does not apply in production)',
      },
    ]);
  });

  it('also covers a variable set to an empty string', () => {
    expect(loadConfig(shape, { mode: 'development', env: { PUBLIC_URL: '' } }).publicUrl).toBe(
      'http://localhost:3000',
    );
  });

  it('gives way to a real value', () => {
    expect(
      loadConfig(shape, { mode: 'development', env: { PUBLIC_URL: 'https://example.com' } })
        .publicUrl,
    ).toBe('https://example.com');
  });

  it('marks a copy, leaving the original schema without a default', () => {
    const original = port();
    const config = { withDefault: devDefault(original, '3000'), without: original };
    expect(
      failure(() => loadConfig(config, { mode: 'development', env: {} })).issues.map(
        (issue) => issue.env,
      ),
    ).toEqual(['WITHOUT']);
  });
});

describe('loadConfig: descriptions', () => {
  it('adds a zod description to "is not set" so operators know what to provide', () => {
    const error = failure(() =>
      loadConfig(
        { relayHost: z.string().describe('hostname of the outbound SMTP relay') },
        { env: {} },
      ),
    );
    expect(error.issues[0]?.message).toBe('is not set: hostname of the outbound SMTP relay');
  });
});

describe('loadConfig: secrets in lists and with a format', () => {
  it('checks every secret of a list, naming the item', () => {
    const error = failure(() =>
      loadConfig(
        { apiKeys: list(secret()) },
        { mode: 'production', env: { API_KEYS: `${STRONG}, changeme` } },
      ),
    );
    expect(error.issues).toEqual([
      {
        code: 'SECRET_KNOWN_DEFAULT',
        path: ['apiKeys', 1],
        env: 'API_KEYS',
        message: 'is a well-known default or placeholder value',
      },
    ]);
    expect(error.message).not.toContain(STRONG);
    const config = loadConfig(
      { apiKeys: list(secret()) },
      { mode: 'production', env: { API_KEYS: `${STRONG},${OTHER_STRONG}` } },
    );
    expect(JSON.stringify(config)).toBe('{"apiKeys":["[redacted]","[redacted]"]}');
    expect(Object.isFrozen(config.apiKeys)).toBe(true);
  });

  it('validates a secret against a format without showing it', () => {
    const shape = {
      databaseUrl: secret({ format: url({ protocols: ['postgres'] }), minEntropyBits: 0 }),
    };
    const good = 'postgres://app:Zq8!vL2$wT5@db.internal:5432/app';
    expect(
      loadConfig(shape, { mode: 'production', env: { DATABASE_URL: good } }).databaseUrl.reveal(),
    ).toBe(good);
    const error = failure(() =>
      loadConfig(shape, {
        mode: 'production',
        env: { DATABASE_URL: 'mysql://root:Zq8!vL2$wT5@db/app' },
      }),
    );
    expect(error.issues).toEqual([
      {
        code: 'INVALID',
        path: ['databaseUrl'],
        env: 'DATABASE_URL',
        message: 'must use one of these protocols: postgres',
      },
    ]);
    expect(error.message).not.toContain('Zq8!vL2$wT5');
  });

  it('cuts the value out of a format message that repeats it', () => {
    const echo = z.string().refine(() => false, { message: `bad: ${STRONG}` });
    const error = failure(() =>
      loadConfig({ token: secret({ format: echo }) }, { env: { TOKEN: STRONG } }),
    );
    expect(error.issues[0]?.message).toBe('bad: [redacted]');
  });

  it('reports a missing enum, literal or union as MISSING, and an invalid default as INVALID', () => {
    const error = failure(() =>
      loadConfig(
        {
          region: z.enum(['eu', 'us']),
          tier: z.literal('gold'),
          level: z.union([z.literal('a'), z.literal('b')]),
          name: z.string().min(3).prefault('ab'),
        },
        { env: {} },
      ),
    );
    expect(codes(error.issues)).toEqual([
      ['REGION', 'MISSING'],
      ['TIER', 'MISSING'],
      ['LEVEL', 'MISSING'],
      ['NAME', 'INVALID'],
    ]);
  });

  it('validates the default of a secret against its format too', () => {
    const error = failure(() =>
      loadConfig({ token: secret({ default: 'short', format: z.string().min(10) }) }, { env: {} }),
    );
    expect(error.issues[0]?.code).toBe('INVALID');
  });
});

describe('loadConfig: devOptional', () => {
  const shape = {
    databaseUrl: devOptional(url({ protocols: ['postgres'] })),
    relays: devOptional(list(url({ protocols: ['smtp'] }))),
  };

  it('gives undefined outside production', () => {
    const config = loadConfig(shape, { mode: 'development', env: {} });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.relays).toBeUndefined();
  });

  it('requires the variable in production, saying why', () => {
    const error = failure(() => loadConfig(shape, { mode: 'production', env: { RELAYS: '' } }));
    expect(error.issues.map((issue) => [issue.env, issue.code, issue.message])).toEqual([
      ['DATABASE_URL', 'MISSING', 'is not set (it is optional in development only)'],
      ['RELAYS', 'MISSING', 'is set but empty (it is optional in development only)'],
    ]);
  });

  it('parses a value normally in both modes', () => {
    const env = { DATABASE_URL: 'postgres://db/app', RELAYS: 'smtp://a, smtp://b' };
    expect({ ...loadConfig(shape, { mode: 'production', env }) }).toEqual({
      databaseUrl: 'postgres://db/app',
      relays: ['smtp://a', 'smtp://b'],
    });
    expect(
      failure(() => loadConfig(shape, { mode: 'development', env: { DATABASE_URL: 'mysql://db' } }))
        .issues[0]?.code,
    ).toBe('INVALID');
  });
});

describe('loadConfig: schemas that throw', () => {
  it('reports a throwing transform as INVALID for its variable, without the value, and keeps collecting', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const value = 'not-json-Zq8vL2wT5';
      const error = failure(() =>
        loadConfig(
          {
            data: z.string().transform((text) => JSON.parse(text) as unknown),
            items: list(z.string().transform((text) => JSON.parse(text) as unknown)),
            port: port(),
          },
          { env: { DATA: value, ITEMS: value }, mode: 'development' },
        ),
      );
      expect(error.code).toBe('CONFIG_INVALID');
      expect(codes(error.issues)).toEqual([
        ['DATA', 'INVALID'],
        ['ITEMS', 'INVALID'],
        ['PORT', 'MISSING'],
      ]);
      expect(error.issues[0]!.message).toBe('could not be parsed (the schema threw SyntaxError)');
      expect(error.message).not.toContain(value);
      // Let any stray promise zod may have created reject and be reported.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('loadConfig: values echoed by custom messages', () => {
  it("scrubs a secret from its own failing refinement's message", () => {
    const error = failure(() =>
      loadConfig(
        {
          token: secret().refine((value) => value.reveal().startsWith('sk_'), {
            error: (issue) => `token ${(issue.input as Secret).reveal()} must start with sk_`,
          }),
        },
        { env: { TOKEN: STRONG }, mode: 'production' },
      ),
    );
    expect(error.message).not.toContain(STRONG);
    expect(error.issues[0]!.message).toBe('token [redacted] must start with sk_');
  });

  it("scrubs any variable's value from a custom message, but not a word it is part of", () => {
    const error = failure(() =>
      loadConfig(
        {
          host: z
            .string()
            .refine(() => false, { error: (issue) => `bad host ${String(issue.input)}` }),
          level: z.enum(['info', 'warn']),
        },
        { env: { HOST: 'db.internal.example', LEVEL: 'inf' } },
      ),
    );
    expect(error.message).not.toContain('db.internal.example');
    expect(error.issues[0]!.message).toBe('bad host [redacted]');
    expect(error.issues[1]!.message).toContain('"info"');
  });
});

describe('loadConfig: secrets set to a default', () => {
  const value = 'Zq8!vL2$wT5-dev-only-value';

  it('refuses in production a devDefault value that is set explicitly', () => {
    const error = failure(() =>
      loadConfig({ key: devDefault(secret(), value) }, { env: { KEY: value }, mode: 'production' }),
    );
    expect(codes(error.issues)).toEqual([['KEY', 'SECRET_DEFAULT']]);
  });

  it('refuses in production a .prefault() value that is set explicitly', () => {
    const error = failure(() =>
      loadConfig({ key: secret().prefault(value) }, { env: { KEY: value }, mode: 'production' }),
    );
    expect(codes(error.issues)).toEqual([['KEY', 'SECRET_DEFAULT']]);
  });

  it('refuses the default with other spacing, letter case or punctuation', () => {
    for (const set of [
      ` ${value} `,
      `${value}\n`,
      value.toUpperCase(),
      'Zq8vL2wT5 dev only value',
    ]) {
      const error = failure(() =>
        loadConfig({ key: secret({ default: value }) }, { env: { KEY: set }, mode: 'production' }),
      );
      expect(codes(error.issues), JSON.stringify(set)).toEqual([['KEY', 'SECRET_DEFAULT']]);
    }
  });
});
