// `pnpm start`: runs the embedded database when needed, then the smtp, worker and api processes.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadServerConfigOrExit, serverMode } from './config.js';
import { createDatabase } from './db/connect.js';
import { migrateToLatest } from './db/migrations.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import type { EmbeddedPostgres } from './embedded-postgres.js';
import { Supervisor } from './supervisor.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const config = loadServerConfigOrExit();
const env: NodeJS.ProcessEnv = { ...process.env };
let embedded: EmbeddedPostgres | undefined;

if (config.databaseUrl === undefined) {
  const directory = join(resolve(config.dataDir), 'pglite');
  await mkdir(directory, { recursive: true });
  embedded = await startEmbeddedPostgres(directory);
  env['DATABASE_URL'] = embedded.url;
  console.error(
    `DATABASE_URL is not set: serving the embedded PostgreSQL (PGlite) in ${directory} at ${embedded.url} (first look only: one transaction at a time)`,
  );
}
if (config.redisUrl === undefined) {
  console.error(
    'REDIS_URL is not set: sessions, lockouts, rate limits and the alias cache are in memory, per process (first look only)',
  );
}
if (serverMode() === 'development') {
  const database = createDatabase({ url: env['DATABASE_URL'] ?? '', maxConnections: 1 });
  await migrateToLatest(database.db);
  await database.destroy();
}

/** The launcher's exit status when a child crash-loops (EX_SOFTWARE), so systemd or Kubernetes see a failure. */
const EXIT_CRASH_LOOP = 70;

const supervisor = new Supervisor({
  cwd: resolve(here, '..'),
  execArgv: ['--import', 'tsx', '--import', join(here, '..', 'runtime', 'register.mjs')],
  ...config.supervisor,
});

let stopping = false;
/** Stops the children in reverse order, then PGlite, then exits with `status` (once). */
const shutdown = (status: number): void => {
  if (stopping) return;
  stopping = true;
  void supervisor
    .stop()
    .then(() => embedded?.stop())
    .then(
      () => process.exit(status),
      () => process.exit(1),
    );
};
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
// Restarting forever would hide the failure from whatever runs the launcher: give up, and say so.
supervisor.on('crash-loop', (name: string, crashes: number) => {
  console.error(
    `postern is stopping: ${name} is in a crash loop (${crashes} crashes within ${config.supervisor.crashWindowMs} ms); exiting with ${EXIT_CRASH_LOOP}`,
  );
  shutdown(EXIT_CRASH_LOOP);
});

const child = (name: string, file: string) => ({ name, module: join(here, file), env: { ...env } });
try {
  // Started in order of need, stopped in reverse: the API checks the SMTP process in /health/ready.
  const smtp = child('smtp', 'smtp-main.ts');
  const smtpPort = await supervisor.start(smtp);
  // A restarted SMTP process must come back on the same port (SMTP_PORT=0 picks one the first time).
  smtp.env['SMTP_PORT'] = String(smtpPort);
  env['SMTP_PORT'] = String(smtpPort);
  await supervisor.start(child('worker', 'worker-main.ts'));
  const apiPort = await supervisor.start(child('api', 'api-main.ts'));
  const docs = config.api.openapi ? 'OpenAPI UI at /docs' : 'no /docs: API_OPENAPI is off';
  console.error(
    `postern is up: API http://${config.api.host}:${apiPort} (${docs}), SMTP ${config.smtp.host}:${smtpPort}`,
  );
} catch (error) {
  // A child that fails before it is ready is not restarted: stop the ones already up, and fail.
  if (!stopping) {
    console.error(
      `postern did not start: ${error instanceof Error ? error.message : String(error)}`,
    );
    shutdown(1);
  }
}
