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

const supervisor = new Supervisor({
  cwd: resolve(here, '..'),
  execArgv: ['--import', 'tsx', '--import', join(here, '..', 'runtime', 'register.mjs')],
});
const child = (name: string, file: string) => ({ name, module: join(here, file), env: { ...env } });
// Started in order of need, stopped in reverse: the API checks the SMTP process in /health/ready.
const smtp = child('smtp', 'smtp-main.ts');
const smtpPort = await supervisor.start(smtp);
// A restarted SMTP process must come back on the same port (SMTP_PORT=0 picks one the first time).
smtp.env['SMTP_PORT'] = String(smtpPort);
env['SMTP_PORT'] = String(smtpPort);
await supervisor.start(child('worker', 'worker-main.ts'));
const apiPort = await supervisor.start(child('api', 'api-main.ts'));
console.error(
  `postern is up: API http://${config.api.host}:${apiPort} (OpenAPI UI at /docs), SMTP ${config.smtp.host}:${smtpPort}`,
);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void supervisor
    .stop()
    .then(() => embedded?.stop())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
