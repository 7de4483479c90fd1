import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { authenticate } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../src/supervisor.js';
import { eventually } from './support/capture.js';
import type { Captured } from './support/capture.js';
import type { TestDatabase } from './support/database.js';
import { callJson, root, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

const PASSWORD = 'an end-to-end passphrase 93';
const output: string[] = [];
let harness: ProcessHarness;
let database: TestDatabase;
let capture: ProcessHarness['capture'];
let supervisor: Supervisor;
let api = '';
let smtpPort = 0;

function call(
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return callJson(api, method, path, body, token);
}

function mailTo(address: string, subject: string): Captured | undefined {
  return capture.messages.find(
    (message) =>
      message.to.includes(address) && message.data.toString('utf8').includes(`Subject: ${subject}`),
  );
}

beforeAll(async () => {
  harness = await startProcessHarness('e2e', {
    env: {
      API_PORT: '0',
      SMTP_ALIAS_CACHE_TTL_MS: '10m',
      SMTP_METRICS_PORT: '0',
      WORKER_METRICS_PORT: '0',
      API_READINESS_TIMEOUT_MS: '1s',
      JWT_SECRET: randomBytes(32).toString('base64url'),
    },
    supervisor: {
      restartDelayMs: 200,
      output: (name, line) => output.push(`${name}: ${line}`),
      log: (line) => output.push(`launcher: ${line}`),
    },
  });
  ({ database, capture, supervisor } = harness);
  // The restart test kills smtp: the relaunched child must come back on the same port.
  const smtp = { name: 'smtp', module: join(root, 'src', 'smtp-main.ts'), env: { ...harness.env } };
  smtpPort = await supervisor.start(smtp);
  smtp.env['SMTP_PORT'] = String(smtpPort);
  await harness.start('worker', { SMTP_PORT: String(smtpPort) });
  const apiPort = await harness.start('api', { SMTP_PORT: String(smtpPort) });
  api = `http://127.0.0.1:${apiPort}`;
}, 60_000);

afterAll(() => harness.close());

describe('the three processes end to end', () => {
  let accessToken = '';
  let firstRefresh = '';
  let aliasId = '';

  it('registers, verifies through the mailed token, logs in, verifies a destination and creates an alias', async () => {
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
    // A mailbox that is not the account's own must confirm it wants the forwarded mail first.
    const refused = await call(
      'POST',
      '/aliases',
      { domainId: shared?.id, localPart: 'shop', destinations: ['me@dest.test'] },
      accessToken,
    );
    expect(refused.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'destinations' });
    expect(
      (await call('POST', '/destinations', { address: 'me@dest.test' }, accessToken)).status,
    ).toBe(201);
    const confirm = await eventually(() =>
      mailTo('me@dest.test', 'Confirm forwarding to this address'),
    );
    const destinationToken = /\n([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})\r?\n/.exec(
      confirm.data.toString('utf8'),
    )?.[1];
    expect(
      (await call('POST', '/destinations/verify', { token: destinationToken }, accessToken)).json,
    ).toMatchObject({ address: 'me@dest.test', verified: true });
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
      // Not the confirmation mail the destination got before the alias existed.
      capture.messages.find(
        (message) => message.to.includes('me@dest.test') && message.from !== 'no-reply@alias.test',
      ),
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
    expect((await call('DELETE', '/account', undefined, accessToken)).status).toBe(400);
    expect(
      (await call('DELETE', '/account', { currentPassword: PASSWORD }, accessToken)).status,
    ).toBe(204);
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
