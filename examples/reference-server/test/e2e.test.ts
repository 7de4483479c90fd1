import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { authenticate } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/supervisor.js';
import { eventually, startCaptureServer } from './support/capture.js';
import type { Captured } from './support/capture.js';
import { createTestDatabase } from './support/database.js';
import type { TestDatabase } from './support/database.js';
import { REDIS_URL, deleteKeys } from './support/redis.js';
import { databaseUrlFor } from './support/server.js';
import { swaks } from './support/swaks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const PASSWORD = 'an end-to-end passphrase 93';
const prefix = `test:rs:e2e:${randomBytes(4).toString('hex')}:`;
const output: string[] = [];
let database: TestDatabase;
let capture: Awaited<ReturnType<typeof startCaptureServer>>;
let supervisor: Supervisor;
let dataDir: string;
let api = '';
let smtpPort = 0;
const redis = new Redis(REDIS_URL);

async function call(
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

function mailTo(address: string, subject: string): Captured | undefined {
  return capture.messages.find(
    (message) =>
      message.to.includes(address) && message.data.toString('utf8').includes(`Subject: ${subject}`),
  );
}

beforeAll(async () => {
  database = await createTestDatabase('rs_e2e');
  capture = await startCaptureServer();
  dataDir = await mkdtemp(join(tmpdir(), 'postern-e2e-'));
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
    SMTP_METRICS_PORT: '0',
    WORKER_METRICS_PORT: '0',
    API_READINESS_TIMEOUT_MS: '1s',
    JWT_SECRET: randomBytes(32).toString('base64url'),
    SRS_SECRET: randomBytes(32).toString('base64url'),
  };
  supervisor = new Supervisor({
    cwd: root,
    execArgv: ['--import', 'tsx', '--import', join(root, 'runtime', 'register.mjs')],
    restartDelayMs: 200,
    output: (name, line) => output.push(`${name}: ${line}`),
    log: (line) => output.push(`launcher: ${line}`),
  });
  const smtp = { name: 'smtp', module: join(root, 'src', 'smtp-main.ts'), env: { ...env } };
  smtpPort = await supervisor.start(smtp);
  smtp.env['SMTP_PORT'] = String(smtpPort);
  await supervisor.start({
    name: 'worker',
    module: join(root, 'src', 'worker-main.ts'),
    env: { ...env, SMTP_PORT: String(smtpPort) },
  });
  const apiPort = await supervisor.start({
    name: 'api',
    module: join(root, 'src', 'api-main.ts'),
    env: { ...env, SMTP_PORT: String(smtpPort) },
  });
  api = `http://127.0.0.1:${apiPort}`;
}, 60_000);

afterAll(async () => {
  await supervisor.stop();
  await capture.close();
  await deleteKeys(redis, prefix);
  await redis.quit();
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('the three processes end to end', () => {
  let accessToken = '';
  let firstRefresh = '';
  let aliasId = '';

  it('registers, verifies through the mailed token, logs in and creates an alias', async () => {
    expect(
      (await call('POST', '/auth/register', { email: 'owner@example.org', password: PASSWORD }))
        .status,
    ).toBe(202);
    const mail = await eventually(() => mailTo('owner@example.org', 'Verify your Postern address'));
    const token = /\n([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})\r?\n/.exec(mail.data.toString('utf8'))?.[1];
    expect(token).toBeDefined();
    expect((await call('POST', '/auth/verify', { token })).json).toEqual({ verified: true });
    const login = await call('POST', '/auth/login', {
      email: 'owner@example.org',
      password: PASSWORD,
    });
    expect(login.status).toBe(200);
    accessToken = String(login.json['accessToken']);
    firstRefresh = String(login.json['refreshToken']);
    const domains = (await call('GET', '/domains', undefined, accessToken)).json['items'] as {
      id: string;
      name: string;
    }[];
    const shared = domains.find((domain) => domain.name === 'alias.test');
    const alias = await call(
      'POST',
      '/aliases',
      { domainId: shared?.id, localPart: 'shop', destinations: ['me@dest.test'] },
      accessToken,
    );
    expect(alias.status).toBe(201);
    aliasId = String(alias.json['id']);
  });

  it('forwards mail sent with swaks, with an SRS sender and a DKIM signature mailauth verifies', async () => {
    const sent = await swaks(smtpPort, 'sender@origin.test', 'shop@alias.test');
    expect(sent.code).toBe(0);
    const forwarded = await eventually(() =>
      capture.messages.find((message) => message.to.includes('me@dest.test')),
    );
    expect(forwarded.from).toMatch(/^SRS0=[^@]+=origin\.test=sender@alias\.test$/i);
    const key = await database.db
      .selectFrom('domains')
      .select(['dkim_selector', 'dkim_public_key'])
      .where('name', '=', 'alias.test')
      .executeTakeFirstOrThrow();
    const dns = (name: string, type: string) =>
      type === 'TXT' && name === `${key.dkim_selector}._domainkey.alias.test`
        ? Promise.resolve([[`v=DKIM1; k=rsa; p=${key.dkim_public_key}`]])
        : Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
    const result = await authenticate(forwarded.data, {
      ip: '127.0.0.1',
      helo: 'alias.test',
      sender: forwarded.from,
      mta: 'dest.test',
      resolver: dns,
      disableBimi: true,
      disableArc: true,
    });
    const signature = result.dkim.results.find(
      (entry: { signingDomain?: string }) => entry.signingDomain === 'alias.test',
    ) as { status: { result: string } } | undefined;
    expect(signature?.status.result).toBe('pass');
    // The counter is written after the 250, off the SMTP answer's path.
    await eventually(async () =>
      (await call('GET', `/aliases/${aliasId}`, undefined, accessToken)).json['forwardedCount'] ===
      1
        ? true
        : undefined,
    );
  });

  it('refuses a disabled alias with 550 at RCPT at once (the cache is invalidated over Redis)', async () => {
    expect(
      (await call('PATCH', `/aliases/${aliasId}`, { enabled: false }, accessToken)).json,
    ).toMatchObject({ enabled: false });
    const refused = await eventually(async () => {
      const attempt = await swaks(smtpPort, 'sender@origin.test', 'shop@alias.test');
      return attempt.code !== 0 ? attempt : undefined;
    });
    expect(refused.output).toMatch(/<\*\* 550/);
    expect((await call('GET', `/aliases/${aliasId}`, undefined, accessToken)).json).toMatchObject({
      rejectedCount: 1,
    });
  });

  it('rotates the refresh token twice; replaying the first revokes the family', async () => {
    const second = await call('POST', '/auth/refresh', { refreshToken: firstRefresh });
    const third = await call('POST', '/auth/refresh', {
      refreshToken: String(second.json['refreshToken']),
    });
    expect(third.status).toBe(200);
    const replay = await call('POST', '/auth/refresh', { refreshToken: firstRefresh });
    expect(replay).toMatchObject({ status: 401, json: { code: 'TOKEN_REUSED' } });
    expect(
      (await call('POST', '/auth/refresh', { refreshToken: String(third.json['refreshToken']) }))
        .status,
    ).toBe(401);
    accessToken = String(
      (await call('POST', '/auth/login', { email: 'owner@example.org', password: PASSWORD })).json[
        'accessToken'
      ],
    );
  });

  it('turns /health/ready red when the SMTP process dies, and green again once the launcher restarts it', async () => {
    expect((await call('GET', '/health/ready')).status).toBe(200);
    const pid = supervisor.pid('smtp');
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGKILL');
    const red = await eventually(async () => {
      const ready = await call('GET', '/health/ready');
      return ready.status === 503 ? ready : undefined;
    });
    expect(red.json).toMatchObject({ ok: false, checks: { smtp: { ok: false } } });
    await eventually(
      async () => ((await call('GET', '/health/ready')).status === 200 ? true : undefined),
      30_000,
    );
    expect(supervisor.restarts('smtp')).toBe(1);
  }, 40_000);

  it('deletes the user with every alias and log row', async () => {
    const user = await database.db
      .selectFrom('users')
      .select('id')
      .where('email', '=', 'owner@example.org')
      .executeTakeFirstOrThrow();
    expect(
      (
        await database.db
          .selectFrom('forwarding_log')
          .select('id')
          .where('user_id', '=', user.id)
          .execute()
      ).length,
    ).toBe(2);
    expect((await call('DELETE', '/account', undefined, accessToken)).status).toBe(204);
    for (const table of ['aliases', 'forwarding_log', 'audit_log', 'domains'] as const) {
      expect(
        await database.db
          .selectFrom(table)
          .select('user_id')
          .where('user_id', '=', user.id)
          .execute(),
      ).toEqual([]);
    }
    expect(
      await database.db.selectFrom('users').select('id').where('id', '=', user.id).execute(),
    ).toEqual([]);
  });

  it('exposes the metrics of every process: HTTP latency and logins on the API, the relay breaker on the SMTP process', async () => {
    const apiMetrics = await (await fetch(`${api}/metrics`)).text();
    expect(apiMetrics).toMatch(
      /postern_http_request_duration_seconds_count\{[^}]*route="\/auth\/login"/,
    );
    expect(apiMetrics).toMatch(/postern_login_total\{[^}]*outcome="success"/);
    const smtp = await (
      await fetch(`http://127.0.0.1:${supervisor.metricsPort('smtp')}/metrics`)
    ).text();
    expect(smtp).toMatch(/postern_circuit_breaker_open\{[^}]*breaker="smtp-relay"[^}]*\} 0/);
    expect(
      (await fetch(`http://127.0.0.1:${supervisor.metricsPort('worker')}/metrics`)).status,
    ).toBe(200);
    expect((await fetch(`http://127.0.0.1:${supervisor.metricsPort('worker')}/other`)).status).toBe(
      404,
    );
  });

  it('wrote no password, token or secret in any log line of any process', () => {
    const all = output.join('\n');
    expect(all).toContain('api listening');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain(firstRefresh);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
    expect(all).not.toMatch(/[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}/);
  });
});
