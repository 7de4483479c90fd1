import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from './support/capture.js';
import { createTestDatabase } from './support/database.js';
import { databaseUrlFor } from './support/server.js';
import { swaks } from './support/swaks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const directories: string[] = [];

afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

/** Runs the launcher (`pnpm start`) with `env` in a child; `output()` is all it printed so far. */
function startLauncher(env: NodeJS.ProcessEnv): {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
} {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', './runtime/register.mjs', 'src/launcher.ts'],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

describe('the launcher (pnpm start) with nothing configured', () => {
  it('serves PGlite, runs the three processes, forwards into the outbox, and stops in reverse order on SIGTERM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'postern-launcher-'));
    directories.push(dataDir);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      DATA_DIR: dataDir,
      API_PORT: '0',
      SMTP_PORT: '0',
    };
    const { child, exited, output } = startLauncher(env);
    try {
      const up = await eventually(
        () =>
          /postern is up: API (http:\/\/[^ ]+) .*SMTP 127\.0\.0\.1:(\d+)/.exec(output()) ??
          undefined,
        90_000,
      );
      const [, api, smtpPort] = up;
      expect(output()).toContain('serving the embedded PostgreSQL (PGlite)');
      expect(output()).toContain('REDIS_URL is not set');
      const ready = await fetch(`${api!}/health/ready`);
      expect(await ready.json()).toEqual({
        ok: true,
        checks: { postgres: { ok: true }, smtp: { ok: true } },
      });
      // Nobody has an alias yet: the forwarder refuses the recipient at RCPT.
      const refused = await swaks(Number(smtpPort), 'a@example.net', 'nobody@postern.localhost');
      expect(refused.output).toMatch(/<\*\* 550/);
      expect(await (await fetch(`${api!}/dev/outbox`)).json()).toEqual({ items: [] });

      // The README's walk-through: register, verify from the outbox, log in, create an alias, send.
      const post = (path: string, body: unknown, token?: string) =>
        fetch(`${api!}${path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          },
          body: JSON.stringify(body),
        });
      const credentials = { email: 'me@example.org', password: 'a long passphrase of mine' };
      expect((await post('/auth/register', credentials)).status).toBe(202);
      const outbox = (await (await fetch(`${api!}/dev/outbox`)).json()) as {
        items: { id: string; from: string; subject: string }[];
      };
      const mail = await (await fetch(`${api!}/dev/outbox/${outbox.items[0]!.id}`)).text();
      const token = /^([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})\r?$/m.exec(mail)?.[1];
      expect((await post('/auth/verify', { token })).status).toBe(200);
      const { accessToken } = (await (await post('/auth/login', credentials)).json()) as {
        accessToken: string;
      };
      const domains = (await (
        await fetch(`${api!}/domains`, { headers: { authorization: `Bearer ${accessToken}` } })
      ).json()) as { items: { id: string }[] };
      expect(
        (
          await post(
            '/aliases',
            { domainId: domains.items[0]!.id, localPart: 'shop', destinations: ['me@example.org'] },
            accessToken,
          )
        ).status,
      ).toBe(201);
      expect(
        (await swaks(Number(smtpPort), 'someone@example.net', 'shop@postern.localhost')).code,
      ).toBe(0);
      const after = (await (await fetch(`${api!}/dev/outbox`)).json()) as {
        items: { id: string; from: string; subject: string }[];
      };
      expect(after.items[0]!.from).toMatch(/^SRS0=.+=example\.net=someone@postern\.localhost$/);
      expect(await (await fetch(`${api!}/dev/outbox/${after.items[0]!.id}`)).text()).toContain(
        'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=postern.localhost;',
      );
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const stops = output()
      .split('\n')
      .filter((line) => line.startsWith('stopping '));
    expect(stops).toEqual(['stopping api', 'stopping worker', 'stopping smtp']);
    // The embedded database is on disk, so a restart keeps the data.
    expect((await readdir(join(dataDir, 'pglite'))).length).toBeGreaterThan(0);
  }, 120_000);
});

describe('the launcher when a child crash-loops', () => {
  it('stops the other children and exits with 70, saying which child and why', async () => {
    const database = await createTestDatabase('rs_launcher_loop');
    const dataDir = await mkdtemp(join(tmpdir(), 'postern-launcher-loop-'));
    directories.push(dataDir);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      DATABASE_URL: databaseUrlFor(database.schema),
      DATA_DIR: dataDir,
      API_PORT: '0',
      SMTP_PORT: '0',
      // Time to take the SMTP port between the kill and the restart; then every restart fails.
      SUPERVISOR_RESTART_DELAY_MS: '700ms',
      SUPERVISOR_MAX_RESTART_DELAY_MS: '700ms',
      SUPERVISOR_MAX_CRASHES: '2',
      SUPERVISOR_CRASH_WINDOW_MS: '1m',
    };
    const { child, exited, output } = startLauncher(env);
    let squatter: Server | undefined;
    // A launcher that never gives up is killed, so the test fails instead of leaking it.
    const guard = setTimeout(() => child.kill('SIGKILL'), 90_000);
    try {
      const [, smtpPort] = await eventually(
        () => /postern is up: API .*SMTP 127\.0\.0\.1:(\d+)/.exec(output()) ?? undefined,
        60_000,
      );
      const smtpPid = /"pid":(\d+)[^\n]*"msg":"smtp ready"/.exec(output())?.[1];
      expect(smtpPid).toBeDefined();
      // The SMTP process dies, and its port is taken before it comes back: every restart then
      // exits at once (EADDRINUSE), a real crash loop.
      process.kill(Number(smtpPid), 'SIGKILL');
      squatter = await eventually(
        () =>
          new Promise<Server | undefined>((resolve) => {
            const server = createServer();
            server.once('error', () => resolve(undefined));
            server.listen(Number(smtpPort), '127.0.0.1', () => resolve(server));
          }),
        5_000,
      );
      expect(await exited).toBe(70);
    } finally {
      clearTimeout(guard);
      if (child.exitCode === null) child.kill('SIGKILL');
      await new Promise<void>((resolve) =>
        squatter === undefined ? resolve() : squatter.close(() => resolve()),
      );
      await database.drop();
    }
    expect(output()).toContain(
      'smtp crashed 3 times within 60000 ms (more than 2): giving up, stopping every child',
    );
    const stops = output()
      .split('\n')
      .filter((line) => line.startsWith('stopping '));
    expect(stops).toEqual(['stopping api', 'stopping worker']);
    expect(output()).toContain(
      'postern is stopping: smtp is in a crash loop (3 crashes within 60000 ms); exiting with 70',
    );
  }, 120_000);
});
