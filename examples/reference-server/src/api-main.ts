// The API process: `tsx src/api-main.ts` (the launcher starts it; run it alone behind a load balancer).
import { createApiServer } from './api/server.js';
import { loadServerConfigOrExit, serverMode } from './config.js';
import { createContainer, disposeContainer, get } from './container.js';
import { migrateToLatest } from './db/migrations.js';
import { smtpEhloCheck } from './health.js';
import { announceReady, onShutdown } from './lifecycle.js';
import { serveMetrics } from './metrics-server.js';

const config = loadServerConfigOrExit(process.env, 'api');
const container = createContainer(config, 'api');
const logger = get(container, 'logger');
for (const warning of config.warnings)
  logger.warn({ code: warning.code, env: warning.env }, warning.message);
if (config.redisUrl === undefined)
  logger.warn(
    'REDIS_URL is not set: sessions, lockouts and rate limits are in memory, per process, and lost on restart (first look only)',
  );
// Development migrates at start; production runs `pnpm --filter @postern/reference-server migrate` once per release.
if (serverMode() === 'development') await migrateToLatest(get(container, 'database').db);
await get(container, 'domains').ensureShared(config.smtp.domain);

const smtpHost =
  config.smtp.host === '0.0.0.0' || config.smtp.host === '::' ? '127.0.0.1' : config.smtp.host;
const app = await createApiServer(container, {
  readiness: { smtp: smtpEhloCheck(smtpHost, config.smtp.port) },
});
const address = await app.listen({ host: config.api.host, port: config.api.port });
const port = app.server.address();
// API_METRICS_PORT: /metrics on a listener of its own, which the load balancer never routes to.
const metricsServer =
  config.api.metricsPort === undefined
    ? undefined
    : await serveMetrics(get(container, 'metrics'), {
        host: config.api.host,
        port: config.api.metricsPort,
        token: config.metricsToken,
      });
announceReady(
  'api',
  typeof port === 'object' && port !== null ? port.port : config.api.port,
  metricsServer?.port,
);
logger.info({ address, metricsPort: metricsServer?.port }, 'api listening');

onShutdown(async () => {
  await app.close();
  await metricsServer?.close();
  await disposeContainer(container);
});
