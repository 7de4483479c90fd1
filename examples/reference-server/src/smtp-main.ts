// The SMTP process: `tsx src/smtp-main.ts`. Never started inside the API process.
import { SyncQueue } from '@postern/sync-queue';
import { RedisBackend } from '@postern/sync-queue/redis';
import type { QueuedDelivery } from '@postern/smtp-forward';
import { deliveryRetry, loadServerConfigOrExit } from './config.js';
import { createContainer, disposeContainer, get } from './container.js';
import { announceReady, onShutdown } from './lifecycle.js';
import { serveMetrics } from './metrics-server.js';
import { startSmtp } from './smtp/process.js';
import { DELIVERY_QUEUE, deliveryRetryOptions } from './worker.js';

const config = loadServerConfigOrExit();
const container = createContainer(config, 'smtp');
const logger = get(container, 'logger');
const redis = get(container, 'redis');
const queue =
  redis === null
    ? undefined
    : new SyncQueue<QueuedDelivery>({
        name: DELIVERY_QUEUE,
        backend: new RedisBackend({ redis, prefix: `${config.redisKeyPrefix}sq:` }),
        // The runs each job gets: enough to span SMTP_QUEUE_LIFETIME_MS (the workers use the same).
        retry: deliveryRetryOptions(deliveryRetry(config)),
      });
const smtp = await startSmtp(container, {
  host: config.smtp.host,
  port: config.smtp.port,
  ...(queue === undefined
    ? {}
    : {
        deliveryQueue: {
          add: async (job: QueuedDelivery) => void (await queue.add(job, { key: job.messageId })),
        },
      }),
});
const metricsServer =
  config.smtp.metricsPort === undefined
    ? undefined
    : await serveMetrics(get(container, 'metrics'), {
        host: config.smtp.host,
        port: config.smtp.metricsPort,
        token: config.metricsToken,
      });
announceReady('smtp', smtp.address.port, metricsServer?.port);
logger.info({ port: smtp.address.port, metricsPort: metricsServer?.port }, 'smtp ready');

onShutdown(async () => {
  await smtp.close();
  await metricsServer?.close();
  await disposeContainer(container);
});
