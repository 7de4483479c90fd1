// Who may read /metrics and /docs: every request goes over a real socket to a listening server or
// a real process, as a scraper's (or a stranger's) would.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { startServer } from './support/http.js';

const TOKEN = randomBytes(32).toString('base64url');

/** A GET with optional headers; the body as text (metrics are not JSON). */
async function fetchText(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, { headers });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

function baseOf(server: Awaited<ReturnType<typeof startServer>>): string {
  const { port } = server.app.server.address() as { port: number };
  return `http://127.0.0.1:${port}`;
}

describe('/metrics on the API listener with METRICS_TOKEN set', () => {
  it('answers 401 without the bearer token or with a wrong one, and the metrics with it', async () => {
    const server = await startServer('metrics_token', { METRICS_TOKEN: TOKEN });
    try {
      const base = baseOf(server);
      const none = await server.call('GET', '/metrics');
      expect(none.status).toBe(401);
      expect(none.json).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
      for (const authorization of [
        `Bearer ${TOKEN}x`,
        `Bearer ${TOKEN.slice(1)}`,
        TOKEN,
        'Bearer ',
      ]) {
        const wrong = await fetchText(`${base}/metrics`, { authorization });
        expect({ authorization, status: wrong.status }).toEqual({ authorization, status: 401 });
        expect(wrong.text).not.toContain('postern_');
      }
      const right = await fetchText(`${base}/metrics`, { authorization: `Bearer ${TOKEN}` });
      expect(right.status).toBe(200);
      expect(right.text).toContain('postern_http_request_duration_seconds');
      // The token guards /metrics only: the API's other public routes answer as before.
      expect((await server.call('GET', '/health/live')).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('serves /metrics to anyone when no token is set (development default)', async () => {
    const server = await startServer('metrics_open');
    try {
      const open = await fetchText(`${baseOf(server)}/metrics`);
      expect(open.status).toBe(200);
      expect(open.text).toContain('postern_http_request_duration_seconds');
    } finally {
      await server.close();
    }
  });
});

describe('/docs', () => {
  it('is not served when API_OPENAPI is false', async () => {
    const server = await startServer('docs_off', { API_OPENAPI: 'false' });
    try {
      for (const path of ['/docs', '/docs/json', '/docs/static/index.html']) {
        const answer = await server.call('GET', path);
        expect({ path, status: answer.status }).toEqual({ path, status: 404 });
      }
      // The routes themselves are unaffected.
      expect((await server.call('GET', '/health/live')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('the API process in production', () => {
  let harness: ProcessHarness;
  const output: string[] = [];
  const production = (): NodeJS.ProcessEnv => ({
    NODE_ENV: 'production',
    API_PORT: '0',
    JWT_SECRET: randomBytes(32).toString('base64url'),
  });

  beforeAll(async () => {
    harness = await startProcessHarness('metrics_exposure', {
      env: production(),
      supervisor: { output: (name, line) => output.push(`${name}: ${line}`) },
    });
  });

  afterAll(() => harness.close());

  it('refuses to start (exit 78) with /metrics on the public listener and no METRICS_TOKEN, naming both ways out', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', './runtime/register.mjs', 'src/api-main.ts'],
      { cwd: root, env: harness.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => {
      // A process that started after all is stopped, so the test fails instead of leaking it.
      const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (exitCode) => {
        clearTimeout(guard);
        resolve(exitCode);
      });
    });
    expect(code).toBe(78);
    expect(text).toMatch(/METRICS_TOKEN[^\n]*is not set[^\n]*API_METRICS_PORT/);
    expect(text).not.toContain('api listening');
  });

  it('serves /metrics on API_METRICS_PORT only, and no /docs', async () => {
    const port = await harness.start('api', { API_METRICS_PORT: '0' }, 'api-private-metrics');
    const base = `http://127.0.0.1:${port}`;
    expect((await fetchText(`${base}/health/live`)).status).toBe(200);
    for (const path of ['/metrics', '/docs', '/docs/json']) {
      const answer = await fetchText(`${base}${path}`);
      expect({ path, status: answer.status }).toEqual({ path, status: 404 });
    }
    const metricsPort = harness.supervisor.metricsPort('api-private-metrics');
    expect(metricsPort).toBeGreaterThan(0);
    expect(metricsPort).not.toBe(port);
    const metrics = await fetchText(`http://127.0.0.1:${String(metricsPort)}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(
      /postern_http_request_duration_seconds_count\{[^}]*route="\/health\/live"/,
    );
  });

  it('starts with METRICS_TOKEN instead, and guards /metrics on the API and the worker with it', async () => {
    const port = await harness.start('api', { METRICS_TOKEN: TOKEN }, 'api-token');
    const base = `http://127.0.0.1:${port}`;
    expect((await fetchText(`${base}/metrics`)).status).toBe(401);
    expect((await fetchText(`${base}/metrics`, { authorization: `Bearer ${TOKEN}` })).status).toBe(
      200,
    );
    await harness.start('worker', { METRICS_TOKEN: TOKEN, WORKER_METRICS_PORT: '0' });
    const worker = `http://127.0.0.1:${String(harness.supervisor.metricsPort('worker'))}/metrics`;
    const refused = await fetchText(worker);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect(refused.text).not.toContain('postern_');
    expect((await fetchText(worker, { authorization: 'Bearer wrong' })).status).toBe(401);
    const allowed = await fetchText(worker, { authorization: `Bearer ${TOKEN}` });
    expect(allowed.status).toBe(200);
    expect(allowed.text).toContain('postern_queue_jobs');
  });
});
