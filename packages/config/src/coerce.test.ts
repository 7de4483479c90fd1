import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import {
  bool,
  duration,
  email,
  integer,
  list,
  number,
  parseDuration,
  port,
  url,
} from './coerce.js';

const ok = (schema: z.core.$ZodType, input: string): unknown => {
  const result = z.safeParse(schema, input);
  if (!result.success)
    throw new Error(`expected ${JSON.stringify(input)} to parse: ${result.error.message}`);
  return result.data;
};
const fails = (schema: z.core.$ZodType, input: string): string[] => {
  const result = z.safeParse(schema, input);
  expect(result.success, `expected ${JSON.stringify(input)} to fail`).toBe(false);
  return result.error?.issues.map((issue) => issue.message) ?? [];
};

describe('bool', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['True', true],
    ['1', true],
    ['yes', true],
    ['YES', true],
    [' true ', true],
    ['false', false],
    ['FALSE', false],
    ['0', false],
    ['no', false],
    ['No', false],
    ['\tfalse\n', false],
  ])('reads %j as %s', (input, expected) => {
    expect(ok(bool(), input)).toBe(expected);
  });

  it.each([
    '',
    ' ',
    'on',
    'off',
    'y',
    'n',
    't',
    'f',
    '2',
    '-1',
    'truthy',
    'null',
    'undefined',
    'tru e',
    '0x1',
  ])('refuses %j instead of using JavaScript truthiness', (input) => {
    expect(fails(bool(), input)).toEqual(['must be one of true, false, 1, 0, yes, no']);
  });

  it('does not leak the refused value into the message', () => {
    expect(fails(bool(), 'hunter2-is-my-password').join(' ')).not.toContain('hunter2');
  });
});

describe('port', () => {
  it.each([
    ['1', 1],
    ['80', 80],
    ['65535', 65_535],
    [' 8080 ', 8080],
    ['0080', 80],
  ])('reads %j as %d', (input, expected) => {
    expect(ok(port(), input)).toBe(expected);
  });

  it.each([
    '',
    '   ',
    '0',
    '-1',
    '-80',
    '+80',
    '65536',
    '99999',
    '0x10',
    '1e3',
    '80.0',
    '80.5',
    '8 0',
    '80abc',
    'http',
    'Infinity',
    'NaN',
  ])('refuses %j', (input) => {
    expect(fails(port(), input)[0]).toMatch(/port number between 1 and 65535/);
  });

  it('accepts 0 only with allowZero', () => {
    expect(ok(port({ allowZero: true }), '0')).toBe(0);
    expect(fails(port({ allowZero: true }), '-1')[0]).toMatch(/between 0 and 65535/);
  });
});

describe('integer', () => {
  it.each([
    ['0', 0],
    ['-5', -5],
    ['+7', 7],
    [' 42 ', 42],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
  ])('reads %j', (input, expected) => {
    expect(ok(integer(), input)).toBe(expected);
  });

  it.each([
    '',
    ' ',
    '0x10',
    '1e3',
    '1.5',
    '1_000',
    '1,000',
    '12abc',
    'Infinity',
    '-',
    '9007199254740993',
  ])('refuses %j', (input) => {
    expect(fails(integer(), input)).toHaveLength(1);
  });

  it('enforces min and max inclusively', () => {
    const schema = integer({ min: 1, max: 10 });
    expect(ok(schema, '1')).toBe(1);
    expect(ok(schema, '10')).toBe(10);
    expect(fails(schema, '0')).toEqual(['must be at least 1']);
    expect(fails(schema, '11')).toEqual(['must be at most 10']);
  });
});

describe('number', () => {
  it.each([
    ['0.25', 0.25],
    ['-3', -3],
    ['.5', 0.5],
    ['10', 10],
    [' 1.0 ', 1],
  ])('reads %j', (input, expected) => {
    expect(ok(number(), input)).toBe(expected);
  });

  it.each(['', '  ', '0x10', '1e3', 'NaN', 'Infinity', '1.', '1.2.3', 'abc', '12abc'])(
    'refuses %j',
    (input) => {
      expect(fails(number(), input)).toEqual(['must be a decimal number']);
    },
  );

  it('enforces a range', () => {
    expect(fails(number({ min: 0, max: 1 }), '1.5')).toEqual(['must be at most 1']);
    expect(fails(number({ min: 0 }), '-0.1')).toEqual(['must be at least 0']);
  });

  it('refuses numbers too large to be finite', () => {
    expect(fails(number(), '9'.repeat(400))).toEqual(['is outside the number range']);
  });
});

describe('duration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['15m', 900_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['0', 0],
    ['0s', 0],
    [' 5s ', 5000],
  ])('reads %j as %d ms', (input, expected) => {
    expect(ok(duration(), input)).toBe(expected);
  });

  it.each([
    '',
    ' ',
    '10',
    '10 m',
    '1.5h',
    '-5s',
    '5S',
    '5sec',
    '5 minutes',
    'ms',
    '1w',
    '0x10s',
    '1e3ms',
    `${'9'.repeat(20)}d`,
  ])('refuses %j', (input) => {
    expect(fails(duration(), input)).toEqual([
      'must be a duration such as 250ms, 30s, 15m, 12h or 7d',
    ]);
  });

  it('enforces minMs and maxMs', () => {
    expect(fails(duration({ minMs: 1000 }), '999ms')).toEqual(['must be at least 1000ms']);
    expect(fails(duration({ maxMs: 60_000 }), '2m')).toEqual(['must be at most 60000ms']);
    expect(ok(duration({ minMs: 1000, maxMs: 60_000 }), '1m')).toBe(60_000);
  });

  it('parseDuration returns undefined for malformed text', () => {
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('15 m')).toBeUndefined();
  });
});

describe('list', () => {
  it('splits on commas and trims items', () => {
    expect(ok(list(), ' a , b,c ')).toEqual(['a', 'b', 'c']);
  });

  it('parses typed items and reports the index of each bad one', () => {
    expect(ok(list(port()), '25, 587,465')).toEqual([25, 587, 465]);
    const result = z.safeParse(list(port()), '25,x,70000');
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path)).toEqual([[1], [2]]);
  });

  it('refuses empty items', () => {
    const result = z.safeParse(list(), 'a,,b,');
    expect(result.error?.issues.map((issue) => [issue.path, issue.message])).toEqual([
      [[1], 'is empty'],
      [[3], 'is empty'],
    ]);
  });

  it('treats a blank string as an empty list unless minItems says otherwise', () => {
    expect(ok(list(), '  ')).toEqual([]);
    expect(fails(list(z.string(), { minItems: 1 }), '')).toEqual(['must have at least 1 items']);
  });

  it('refuses an empty separator when the schema is built', () => {
    expect(() => list(z.string(), { separator: '' })).toThrow(
      expect.objectContaining({ code: 'SHAPE_INVALID' }),
    );
  });

  it('honours a custom separator and enum items', () => {
    expect(ok(list(z.enum(['a', 'b']), { separator: ';' }), 'a; b')).toEqual(['a', 'b']);
    expect(fails(list(z.enum(['a', 'b'])), 'a,c')).toHaveLength(1);
  });
});

describe('url', () => {
  it.each(['http://example.com', 'https://example.com:8443/path?q=1', ' https://example.com '])(
    'accepts %j',
    (input) => {
      expect(ok(url(), input)).toBe(input.trim());
    },
  );

  it.each([
    ['', 'must be an absolute URL'],
    ['example.com', 'must be an absolute URL'],
    ['http:example.com', 'must be written as http://…'],
    ['http:/example.com', 'must be written as http://…'],
    ['javascript:alert(1)', 'must use one of these protocols: http, https'],
    ['ftp://example.com', 'must use one of these protocols: http, https'],
  ])('refuses %j', (input, message) => {
    expect(fails(url(), input)).toEqual([message]);
  });

  it('accepts other protocols when listed', () => {
    const schema = url({ protocols: ['postgres', 'postgresql', 'redis:', 'mailto'] });
    expect(ok(schema, 'postgres://user:pw@db:5432/app')).toBe('postgres://user:pw@db:5432/app');
    expect(ok(schema, 'redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(ok(schema, 'mailto:ops@example.com')).toBe('mailto:ops@example.com');
    expect(fails(schema, 'https://example.com')).toEqual([
      'must use one of these protocols: postgres, postgresql, redis, mailto',
    ]);
  });

  it('never repeats the URL (it may hold credentials) in the message', () => {
    expect(fails(url(), 'ftp://user:s3cretPassw0rd@host').join(' ')).not.toContain(
      's3cretPassw0rd',
    );
  });
});

describe('email', () => {
  it('accepts an address and trims it', () => {
    expect(ok(email(), ' ops@example.com ')).toBe('ops@example.com');
  });

  it.each(['', 'ops', 'ops@', '@example.com', 'a b@example.com'])('refuses %j', (input) => {
    expect(fails(email(), input)).toEqual(['must be an email address']);
  });
});
