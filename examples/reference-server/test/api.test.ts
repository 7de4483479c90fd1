import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribeToChanges } from '../src/alias-resolver.js';
import { createApiServer } from '../src/api/server.js';
import { get } from '../src/container.js';
import type { DnsResolver } from '../src/domains.js';
import { eventually } from './support/capture.js';
import { createTestEnvironment } from './support/server.js';
import type { TestEnvironment } from './support/server.js';

const PASSWORD = 'correct horse battery staple 42';
const zone = new Map<string, string[][]>();
const dns: DnsResolver = {
  resolveTxt: (name) =>
    zone.has(name) ? Promise.resolve(zone.get(name)!) : Promise.reject(new Error('ENOTFOUND')),
  resolveMx: () => Promise.resolve([{ exchange: 'mx.alias.test', priority: 10 }]),
};

let environment: TestEnvironment;
let app: FastifyInstance;

async function latestToken(to: string): Promise<string> {
  const outbox = get(environment.container('api'), 'outbox');
  for (const entry of await outbox.list()) {
    if (!entry.to.includes(to)) continue;
    const text = (await outbox.read(entry.id)) ?? '';
    const match = /\n([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})\r?\n/.exec(text);
    if (match?.[1] !== undefined) return match[1];
  }
  throw new Error(`no token mailed to ${to}`);
}

async function signUp(email: string): Promise<{ accessToken: string; refreshToken: string }> {
  expect(
    (
      await app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email, password: PASSWORD },
      })
    ).statusCode,
  ).toBe(202);
  expect(
    (
      await app.inject({
        method: 'POST',
        url: '/auth/verify',
        payload: { token: await latestToken(email) },
      })
    ).json(),
  ).toEqual({ verified: true });
  const login = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email, password: PASSWORD },
  });
  expect(login.statusCode).toBe(200);
  return login.json();
}

beforeAll(async () => {
  environment = await createTestEnvironment('api', { LIMITS_REGISTER_PER_HOUR: '50' });
  const container = environment.container('api', { dns });
  await get(container, 'domains').ensureShared('alias.test');
  app = await createApiServer(container);
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await environment.close();
});

describe('cross-cutting', () => {
  it('honours a clean X-Request-Id, replaces a dirty one, and puts it in error answers', async () => {
    const kept = await app.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { 'x-request-id': 'abc-123' },
    });
    expect(kept.statusCode).toBe(404);
    expect(kept.headers['x-request-id']).toBe('abc-123');
    expect(kept.json()).toEqual({
      code: 'NOT_FOUND',
      message: 'no route GET /nowhere',
      requestId: 'abc-123',
    });
    const replaced = await app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': 'bad id\nwith newline' },
    });
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers bad input with 400 naming the field, never 500', async () => {
    const missing = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'x@example.org' },
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body.password' });
    const wrongType = await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'not-an-email', password: 'x' },
    });
    expect(wrongType.json()).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body.email' });
    const badJson = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"email":',
    });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    const badQuery = await app.inject({
      method: 'GET',
      url: '/aliases?limit=9999',
      headers: { authorization: 'Bearer x' },
    });
    expect(badQuery.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'querystring.limit',
    });
  });

  it('sends helmet headers, the OpenAPI document, liveness, readiness and metrics', async () => {
    const live = await app.inject({ method: 'GET', url: '/health/live' });
    expect(live.headers['x-content-type-options']).toBe('nosniff');
    expect(live.headers['content-security-policy']).toContain("default-src 'self'");
    const openapi = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{
      openapi: string;
      paths: Record<string, unknown>;
    }>();
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        '/auth/login',
        '/aliases',
        '/aliases/{id}',
        '/destinations',
        '/destinations/verify',
        '/destinations/{id}',
        '/domains/{id}/dns',
      ]),
    );
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({
      ok: true,
      checks: { postgres: { ok: true }, redis: { ok: true } },
    });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain('postern_http_request_duration_seconds_bucket');
  });

  it('refuses routes without a valid bearer token', async () => {
    expect((await app.inject({ method: 'GET', url: '/aliases' })).json()).toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/aliases',
          headers: { authorization: 'Bearer not.a.jwt' },
        })
      ).statusCode,
    ).toBe(401);
  });
});

describe('accounts', () => {
  it('registers, verifies by mail, logs in, rotates, and revokes the family on replay', async () => {
    const email = 'rotate@example.org';
    const { accessToken, refreshToken } = await signUp(email);
    expect(environment.logLines.join('\n')).not.toContain(PASSWORD);

    const first = await app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refreshToken },
    });
    expect(first.statusCode).toBe(200);
    const second = await app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refreshToken: first.json<{ refreshToken: string }>().refreshToken },
    });
    expect(second.statusCode).toBe(200);
    const replay = await app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refreshToken },
    });
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ code: 'TOKEN_REUSED' });
    // The whole family is gone: the newest token and the access token's session are dead too.
    const after = await app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refreshToken: second.json<{ refreshToken: string }>().refreshToken },
    });
    expect(after.statusCode).toBe(401);
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/auth/sessions',
          headers: { authorization: `Bearer ${accessToken}` },
        })
      ).statusCode,
    ).toBe(401);
  });

  it('refuses login before verification and with a wrong password', async () => {
    const email = 'unverified@example.org';
    await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email, password: PASSWORD },
    });
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email, password: PASSWORD },
        })
      ).json(),
    ).toMatchObject({ code: 'EMAIL_NOT_VERIFIED' });
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email, password: 'wrong password here' },
        })
      ).json(),
    ).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: 'weak@example.org', password: 'short' },
        })
      ).json(),
    ).toMatchObject({ code: 'WEAK_PASSWORD' });
  });

  it('answers a duplicate registration exactly like a new one and warns the owner by mail', async () => {
    const email = 'twice@example.org';
    await signUp(email);
    const again = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email, password: PASSWORD },
    });
    expect(again.statusCode).toBe(202);
    const subjects = (await get(environment.container('api'), 'outbox').list())
      .filter((entry) => entry.to.includes(email))
      .map((entry) => entry.subject);
    expect(subjects).toContain('Someone tried to register with your address');
  });

  it('lists and revokes sessions, logs out everywhere, changes and resets the password', async () => {
    const email = 'sessions@example.org';
    const one = await signUp(email);
    const two = (
      await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email, password: PASSWORD },
      })
    ).json<{ accessToken: string; sessionId: string; refreshToken: string }>();
    const auth = { authorization: `Bearer ${one.accessToken}` };
    const list = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: auth })).json<{
      items: { id: string; current: boolean }[];
    }>();
    expect(list.items).toHaveLength(2);
    expect(list.items.filter((item) => item.current)).toHaveLength(1);
    expect(
      (
        await app.inject({
          method: 'DELETE',
          url: `/auth/sessions/${two.sessionId}`,
          headers: auth,
        })
      ).statusCode,
    ).toBe(204);
    expect(
      (
        await app.inject({
          method: 'DELETE',
          url: `/auth/sessions/${two.sessionId}`,
          headers: auth,
        })
      ).statusCode,
    ).toBe(404);

    const newPassword = 'another long passphrase 7';
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/password',
          headers: auth,
          payload: { currentPassword: 'nope nope nope', newPassword },
        })
      ).statusCode,
    ).toBe(401);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/password',
          headers: auth,
          payload: { currentPassword: PASSWORD, newPassword },
        })
      ).statusCode,
    ).toBe(204);

    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/password-reset/request',
          payload: { email: 'nobody@example.org' },
        })
      ).statusCode,
    ).toBe(202);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/password-reset/request',
          payload: { email },
        })
      ).statusCode,
    ).toBe(202);
    const resetToken = await latestToken(email);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/password-reset/complete',
          payload: { token: resetToken, newPassword: PASSWORD },
        })
      ).statusCode,
    ).toBe(204);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/password-reset/complete',
          payload: { token: resetToken, newPassword: PASSWORD },
        })
      ).statusCode,
    ).toBe(401);
    // A reset ends every session.
    expect(
      (await app.inject({ method: 'GET', url: '/auth/sessions', headers: auth })).statusCode,
    ).toBe(401);

    const fresh = (
      await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email, password: PASSWORD },
      })
    ).json<{ accessToken: string; refreshToken: string }>();
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/logout-all',
          headers: { authorization: `Bearer ${fresh.accessToken}` },
        })
      ).json(),
    ).toEqual({ ended: 1 });
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/auth/logout',
          payload: { refreshToken: fresh.refreshToken },
        })
      ).statusCode,
    ).toBe(204);
  });
});

describe('aliases and domains', () => {
  it('creates, pages, disables, re-targets and deletes aliases; a taken address is 409', async () => {
    const { accessToken } = await signUp('aliases@example.org');
    const auth = { authorization: `Bearer ${accessToken}` };
    const domains = (await app.inject({ method: 'GET', url: '/domains', headers: auth })).json<{
      items: { id: string; name: string }[];
    }>();
    const shared = domains.items.find((domain) => domain.name === 'alias.test')!;
    const created = await app.inject({
      method: 'POST',
      url: '/aliases',
      headers: auth,
      payload: { domainId: shared.id, localPart: 'shop', destinations: ['aliases@example.org'] },
    });
    expect(created.statusCode).toBe(201);
    const alias = created.json<{ id: string; address: string }>();
    expect(alias.address).toBe('shop@alias.test');
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/aliases',
          headers: auth,
          payload: {
            domainId: shared.id,
            localPart: 'shop',
            destinations: ['aliases@example.org'],
          },
        })
      ).json(),
    ).toMatchObject({ code: 'ALIAS_TAKEN', field: 'localPart' });
    await app.inject({
      method: 'POST',
      url: '/aliases',
      headers: auth,
      payload: { domainId: shared.id, destinations: ['aliases@example.org'] },
    });
    const page = (
      await app.inject({ method: 'GET', url: '/aliases?limit=1', headers: auth })
    ).json<{ items: unknown[]; nextCursor: string }>();
    expect(page.items).toHaveLength(1);
    const rest = (
      await app.inject({
        method: 'GET',
        url: `/aliases?limit=5&cursor=${page.nextCursor}`,
        headers: auth,
      })
    ).json<{ items: unknown[]; nextCursor: null }>();
    expect(rest).toMatchObject({ nextCursor: null });
    expect(rest.items).toHaveLength(1);
    expect(
      (
        await app.inject({
          method: 'PATCH',
          url: `/aliases/${alias.id}`,
          headers: auth,
          payload: { enabled: false },
        })
      ).json(),
    ).toMatchObject({ enabled: false });
    expect(
      (
        await app.inject({
          method: 'PATCH',
          url: `/aliases/${alias.id}`,
          headers: auth,
          payload: { destinations: ['not an email'] },
        })
      ).json(),
    ).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body.destinations.0' });
    expect(
      (await app.inject({ method: 'GET', url: `/aliases/${alias.id}`, headers: auth })).json(),
    ).toMatchObject({ forwardedCount: 0, rejectedCount: 0, lastSeenAt: null });
    expect(
      (await app.inject({ method: 'DELETE', url: `/aliases/${alias.id}`, headers: auth }))
        .statusCode,
    ).toBe(204);
    expect(
      (await app.inject({ method: 'GET', url: `/aliases/${alias.id}`, headers: auth })).statusCode,
    ).toBe(404);
  });

  it('adds a domain, shows its DNS records and verifies it through the injected resolver', async () => {
    const { accessToken } = await signUp('domains@example.org');
    const auth = { authorization: `Bearer ${accessToken}` };
    // SMTP processes listen here to drop a domain's cached DKIM key and alias routes.
    const published: string[] = [];
    const subscriber = environment.redis.duplicate();
    const unsubscribe = await subscribeToChanges(
      subscriber,
      `${environment.prefix}domain-changed`,
      (name) => published.push(name),
    );
    const domain = (
      await app.inject({
        method: 'POST',
        url: '/domains',
        headers: auth,
        payload: { name: 'mine.example' },
      })
    ).json<{ id: string }>();
    const records = (
      await app.inject({ method: 'GET', url: `/domains/${domain.id}/dns`, headers: auth })
    ).json<{ records: { type: string; name: string; value: string }[] }>().records;
    expect(records.map((record) => record.type)).toEqual(['MX', 'TXT', 'TXT', 'TXT', 'TXT']);
    expect(
      (
        await app.inject({ method: 'POST', url: `/domains/${domain.id}/verify`, headers: auth })
      ).json(),
    ).toMatchObject({ verified: false });
    for (const record of records)
      if (record.type === 'TXT') zone.set(record.name, [[record.value]]);
    expect(
      (
        await app.inject({ method: 'POST', url: `/domains/${domain.id}/verify`, headers: auth })
      ).json(),
    ).toEqual({ verified: true, checks: { ownership: true, mx: true, dkim: true } });
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/aliases',
          headers: auth,
          payload: { domainId: domain.id, localPart: 'hi', destinations: ['domains@example.org'] },
        })
      ).statusCode,
    ).toBe(201);
    expect(
      (await app.inject({ method: 'DELETE', url: `/domains/${domain.id}`, headers: auth }))
        .statusCode,
    ).toBe(204);
    await eventually(() => (published.length === 2 ? true : undefined));
    expect(published).toEqual(['mine.example', 'mine.example']);
    await unsubscribe();
    subscriber.disconnect();
  });

  it('deleting the account removes every alias, domain and log row', async () => {
    const { accessToken } = await signUp('leaving@example.org');
    const auth = { authorization: `Bearer ${accessToken}` };
    const shared = (await app.inject({ method: 'GET', url: '/domains', headers: auth })).json<{
      items: { id: string }[];
    }>().items[0]!;
    await app.inject({
      method: 'POST',
      url: '/aliases',
      headers: auth,
      payload: { domainId: shared.id, destinations: ['leaving@example.org'] },
    });
    const { db } = environment.database;
    const user = await db
      .selectFrom('users')
      .select('id')
      .where('email', '=', 'leaving@example.org')
      .executeTakeFirstOrThrow();
    expect(
      (await db.selectFrom('audit_log').select('id').where('user_id', '=', user.id).execute())
        .length,
    ).toBeGreaterThan(0);
    expect(
      (
        await app.inject({
          method: 'DELETE',
          url: '/account',
          headers: auth,
          payload: { currentPassword: PASSWORD },
          // Deletion spends the per-IP login budget, which this file's sign-ups used up.
          remoteAddress: '198.51.100.20',
        })
      ).statusCode,
    ).toBe(204);
    for (const table of ['aliases', 'audit_log', 'forwarding_log', 'domains'] as const) {
      expect(
        await db.selectFrom(table).select('user_id').where('user_id', '=', user.id).execute(),
      ).toEqual([]);
    }
    expect((await app.inject({ method: 'GET', url: '/aliases', headers: auth })).statusCode).toBe(
      401,
    );
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After once the login limit is spent', async () => {
    // A different address each time, so the account lockout (also 429) never steps in first.
    const attempt = (index: number) =>
      app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: `flood${index}@example.org`, password: 'x' },
        remoteAddress: '203.0.113.9',
      });
    let last = await attempt(0);
    for (let index = 1; index < 12 && last.statusCode !== 429; index += 1)
      last = await attempt(index);
    expect(last.statusCode).toBe(429);
    expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);
    expect(last.json()).toMatchObject({ code: 'RATE_LIMITED' });
  });
});

describe('refresh token in a cookie', () => {
  it('sets an httpOnly, Secure, SameSite=Strict cookie and demands the CSRF header on refresh', async () => {
    const cookieEnvironment = await createTestEnvironment('cookie', {
      API_REFRESH_TOKEN_IN: 'cookie',
    });
    const cookieApp = await createApiServer(cookieEnvironment.container('api', { dns }));
    try {
      await get(cookieEnvironment.container('api'), 'domains').ensureShared('alias.test');
      const email = 'cookie@example.org';
      await cookieApp.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email, password: PASSWORD },
      });
      const outbox = get(cookieEnvironment.container('api'), 'outbox');
      const text = (await outbox.read((await outbox.list())[0]!.id)) ?? '';
      const token = /\n([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})\r?\n/.exec(text)?.[1];
      await cookieApp.inject({ method: 'POST', url: '/auth/verify', payload: { token } });
      const login = await cookieApp.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email, password: PASSWORD },
      });
      expect(login.json()).not.toHaveProperty('refreshToken');
      const refreshCookie = login.cookies.find((cookie) => cookie.name === 'postern_refresh')!;
      const csrfCookie = login.cookies.find((cookie) => cookie.name === 'postern_csrf')!;
      expect(refreshCookie).toMatchObject({
        httpOnly: true,
        secure: true,
        sameSite: 'Strict',
        path: '/auth',
      });
      expect(csrfCookie.value).toBe(login.json<{ csrfToken: string }>().csrfToken);
      const cookies = { postern_refresh: refreshCookie.value, postern_csrf: csrfCookie.value };
      const forged = await cookieApp.inject({ method: 'POST', url: '/auth/refresh', cookies });
      expect(forged.statusCode).toBe(403);
      expect(forged.json()).toMatchObject({ code: 'CSRF_FAILED' });
      expect(
        (
          await cookieApp.inject({
            method: 'POST',
            url: '/auth/refresh',
            cookies,
            headers: { 'x-csrf-token': 'x'.repeat(32) },
          })
        ).statusCode,
      ).toBe(403);
      expect(
        (await cookieApp.inject({ method: 'POST', url: '/auth/refresh' })).json(),
      ).toMatchObject({ code: 'UNAUTHENTICATED' });
      const rotated = await cookieApp.inject({
        method: 'POST',
        url: '/auth/refresh',
        cookies,
        headers: { 'x-csrf-token': csrfCookie.value },
      });
      expect(rotated.statusCode).toBe(200);
      const next = rotated.cookies.find((cookie) => cookie.name === 'postern_refresh')!;
      expect(next.value).not.toBe(refreshCookie.value);
      const nextCsrf = rotated.cookies.find((cookie) => cookie.name === 'postern_csrf')!.value;
      const out = await cookieApp.inject({
        method: 'POST',
        url: '/auth/logout',
        cookies: { postern_refresh: next.value, postern_csrf: nextCsrf },
        headers: { 'x-csrf-token': nextCsrf },
      });
      expect(out.statusCode).toBe(204);
      expect(out.cookies.find((cookie) => cookie.name === 'postern_refresh')?.value).toBe('');
    } finally {
      await cookieApp.close();
      await cookieEnvironment.close();
    }
  });
});
