import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/supervisor.js';
import { eventually, startCaptureServer } from './support/capture.js';
import { createTestDatabase } from './support/database.js';
import type { TestDatabase } from './support/database.js';
import { REDIS_URL, deleteKeys } from './support/redis.js';
import { databaseUrlFor } from './support/server.js';
import { swaks } from './support/swaks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const PASSWORD = 'two of everything passphrase 5';
const prefix = `test:rs:multi:${randomBytes(4).toString('hex')}:`;
const redis = new Redis(REDIS_URL);
let database: TestDatabase;
let capture: Awaited<ReturnType<typeof startCaptureServer>>;
let supervisor: Supervisor;
let dataDir: string;
const apis: string[] = [];
const smtps: number[] = [];

async function call(
  api: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const response = await fetch(`${api}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

const [a, b] = [() => apis[0]!, () => apis[1]!];

beforeAll(async () => {
  database = await createTestDatabase('rs_multi');
  capture = await startCaptureServer();
  dataDir = await mkdtemp(join(tmpdir(), 'postern-multi-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrlFor(database.schema),
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    DATA_DIR: dataDir,
    API_PORT: '0',
    SMTP_PORT: '0',
    SMTP_DOMAIN: 'alias.test',
    SMTP_RELAYS: `smtp://127.0.0.1:${capture.port}`,
    SMTP_FROM_REWRITE: 'never',
    SMTP_ALIAS_CACHE_TTL_MS: '10m',
    LIMITS_ALIAS_CREATE_PER_HOUR: '3',
    JWT_SECRET: randomBytes(32).toString('base64url'),
    SRS_SECRET: randomBytes(32).toString('base64url'),
  };
  supervisor = new Supervisor({
    cwd: root,
    execArgv: ['--import', 'tsx', '--import', join(root, 'runtime', 'register.mjs')],
    output: () => undefined,
    log: () => undefined,
  });
  // The worker relays system mail (verification) from the queue the APIs fill.
  await supervisor.start({
    name: 'worker',
    module: join(root, 'src', 'worker-main.ts'),
    env: { ...env },
  });
  for (const name of ['smtp-1', 'smtp-2'])
    smtps.push(
      await supervisor.start({ name, module: join(root, 'src', 'smtp-main.ts'), env: { ...env } }),
    );
  const ports = await Promise.all(
    ['api-1', 'api-2'].map((name, index) =>
      supervisor.start({
        name,
        module: join(root, 'src', 'api-main.ts'),
        env: { ...env, SMTP_PORT: String(smtps[index]) },
      }),
    ),
  );
  for (const port of ports) apis.push(`http://127.0.0.1:${port}`);
}, 60_000);

afterAll(async () => {
  await supervisor.stop();
  await capture.close();
  await deleteKeys(redis, prefix);
  await redis.quit();
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
});

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
    const statuses: number[] = [];
    for (let index = 0; index < 4; index += 1) {
      const created = await call(
        index % 2 === 0 ? a() : b(),
        'POST',
        '/aliases',
        { domainId, localPart: `m${index}`, destinations: ['me@dest.test'] },
        token,
      );
      statuses.push(created.status);
      if (index === 0) aliasId = String(created.json['id']);
    }
    expect(statuses).toEqual([201, 201, 201, 429]);
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
