import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/capture.js';
import { callJson as call, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

const PASSWORD = 'two of everything passphrase 5';
let harness: ProcessHarness;
let capture: ProcessHarness['capture'];
const apis: string[] = [];
const smtps: number[] = [];

const [a, b] = [() => apis[0]!, () => apis[1]!];

beforeAll(async () => {
  harness = await startProcessHarness('multi', {
    env: {
      API_PORT: '0',
      SMTP_ALIAS_CACHE_TTL_MS: '10m',
      LIMITS_ALIAS_CREATE_PER_HOUR: '3',
      JWT_SECRET: randomBytes(32).toString('base64url'),
    },
  });
  ({ capture } = harness);
  // The worker relays system mail (verification) from the queue the APIs fill.
  await harness.start('worker');
  for (const name of ['smtp-1', 'smtp-2']) smtps.push(await harness.start('smtp', {}, name));
  const ports = await Promise.all(
    ['api-1', 'api-2'].map((name, index) =>
      harness.start('api', { SMTP_PORT: String(smtps[index]) }, name),
    ),
  );
  for (const port of ports) apis.push(`http://127.0.0.1:${port}`);
}, 60_000);

afterAll(() => harness.close());

describe('two API and two SMTP processes on one Redis and one PostgreSQL', () => {
  let token = '';
  let refresh = '';
  let aliasId = '';
  let domainId = '';

  it('a session opened on one API works on the other, and a logout on one ends it on both', async () => {
    expect(
      (
        await call(a(), 'POST', '/auth/register', {
          email: 'multi@example.org',
          password: PASSWORD,
        })
      ).status,
    ).toBe(202);
    const mail = await eventually(() =>
      capture.messages.find((message) => message.to.includes('multi@example.org')),
    );
    const verification = /\n([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})\r?\n/.exec(
      mail.data.toString('utf8'),
    )?.[1];
    expect((await call(b(), 'POST', '/auth/verify', { token: verification })).status).toBe(200);
    const login = await call(a(), 'POST', '/auth/login', {
      email: 'multi@example.org',
      password: PASSWORD,
    });
    token = String(login.json['accessToken']);
    refresh = String(login.json['refreshToken']);
    expect((await call(b(), 'GET', '/auth/sessions', undefined, token)).status).toBe(200);
    const rotated = await call(b(), 'POST', '/auth/refresh', { refreshToken: refresh });
    expect(rotated.status).toBe(200);
    // The token rotated on B is known as spent on A too: inside the reuse grace window A answers
    // with the very successor B issued (a retried request), never with a second, parallel family.
    const retried = await call(a(), 'POST', '/auth/refresh', { refreshToken: refresh });
    expect(retried.status).toBe(200);
    expect(retried.json['refreshToken']).toBe(rotated.json['refreshToken']);
    const again = await call(a(), 'POST', '/auth/login', {
      email: 'multi@example.org',
      password: PASSWORD,
    });
    token = String(again.json['accessToken']);
    expect((await call(a(), 'POST', '/auth/logout-all', undefined, token)).status).toBe(200);
    expect((await call(b(), 'GET', '/auth/sessions', undefined, token)).status).toBe(401);
    token = String(
      (await call(b(), 'POST', '/auth/login', { email: 'multi@example.org', password: PASSWORD }))
        .json['accessToken'],
    );
  });

  it('failed logins counted on one API lock the account on the other', async () => {
    await call(a(), 'POST', '/auth/register', { email: 'locked@example.org', password: PASSWORD });
    let last = { status: 0, json: {} as Record<string, unknown> };
    for (let attempt = 0; attempt < 4; attempt += 1) {
      last = await call(attempt % 2 === 0 ? a() : b(), 'POST', '/auth/login', {
        email: 'locked@example.org',
        password: 'wrong password, again',
      });
    }
    expect(last.json['code']).toBe('ACCOUNT_LOCKED');
    const other = await call(a(), 'POST', '/auth/login', {
      email: 'locked@example.org',
      password: 'wrong password, again',
    });
    expect(other.json['code']).toBe('ACCOUNT_LOCKED');
  });

  it('the alias-creation limit is one budget across both APIs', async () => {
    const domains = (await call(a(), 'GET', '/domains', undefined, token)).json['items'] as {
      id: string;
      name: string;
    }[];
    domainId = domains.find((domain) => domain.name === 'alias.test')!.id;
    // Probed before it exists: both SMTP processes cache "unknown" for m0@ (for 10 minutes here).
    for (const port of smtps) {
      const unknown = await swaks(port, 'sender@origin.test', 'm0@alias.test');
      expect(unknown.output).toMatch(/<\*\* 550/);
    }
    const statuses: number[] = [];
    for (let index = 0; index < 4; index += 1) {
      const created = await call(
        index % 2 === 0 ? a() : b(),
        'POST',
        '/aliases',
        { domainId, localPart: `m${index}`, destinations: ['multi@example.org'] },
        token,
      );
      statuses.push(created.status);
      if (index === 0) aliasId = String(created.json['id']);
    }
    expect(statuses).toEqual([201, 201, 201, 429]);
    // Creating it published the address: neither process keeps refusing it from its cache.
    for (const port of smtps)
      await eventually(async () =>
        (await swaks(port, 'sender@origin.test', 'm0@alias.test')).code === 0 ? true : undefined,
      );
  });

  it('disabling an alias on one API makes both SMTP processes refuse it (cache invalidated over Redis)', async () => {
    for (const port of smtps)
      expect((await swaks(port, 'sender@origin.test', 'm0@alias.test')).code).toBe(0);
    expect(
      (await call(b(), 'PATCH', `/aliases/${aliasId}`, { enabled: false }, token)).status,
    ).toBe(200);
    for (const port of smtps) {
      const refused = await eventually(async () => {
        const attempt = await swaks(port, 'sender@origin.test', 'm0@alias.test');
        return attempt.code !== 0 ? attempt : undefined;
      });
      expect(refused.output).toMatch(/<\*\* 550/);
    }
  });
});
