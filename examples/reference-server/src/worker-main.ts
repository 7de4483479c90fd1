// The worker process: `tsx src/worker-main.ts`: sync-queue consumers (queued SMTP deliveries, system mail).
import { SyncQueue } from '@postern/sync-queue';
import type { Worker } from '@postern/sync-queue';
import { RedisBackend } from '@postern/sync-queue/redis';
import type { QueuedDelivery } from '@postern/smtp-forward';
import { deliveryRetry, loadServerConfigOrExit } from './config.js';
import { createContainer, disposeContainer, get } from './container.js';
import { announceReady, onShutdown } from './lifecycle.js';
import { serveMetrics } from './metrics-server.js';
import { RelayMailer } from './mailer.js';
import type { SystemMail } from './mailer.js';
import { createAliasResolver } from './alias-resolver.js';
import { parseRelay, relayPolicy } from './smtp/process.js';
import { createDeadDeliveryHandler } from './dead-deliveries.js';
import {
  DELIVERY_QUEUE,
  SYSTEM_MAIL_QUEUE,
  createDeliveryHandler,
  deliveryRetryOptions,
  findDeadLetter,
  queuedAt,
} from './worker.js';
import type { DeliveryHandler } from './worker.js';

const config = loadServerConfigOrExit();
const container = createContainer(config, 'worker');
const logger = get(container, 'logger');
const metrics = get(container, 'metrics');
const redis = get(container, 'redis');
const workers: Worker[] = [];
let depthTimer: NodeJS.Timeout | undefined;
let delivery: DeliveryHandler | undefined;

if (redis === null || (config.smtp.relays ?? []).length === 0) {
  // With no Redis or no relay, the SMTP process delivers to the outbox itself: nothing to consume.
  logger.warn('worker idle: queued delivery needs REDIS_URL and SMTP_RELAYS');
} else {
  const backend = new RedisBackend({ redis, prefix: `${config.redisKeyPrefix}sq:` });
  const relays = config.smtp.relays ?? [];
  const timeoutMs = config.smtp.relayTimeoutMs;
  const retry = deliveryRetry(config);
  const queue = new SyncQueue<QueuedDelivery>({
    name: DELIVERY_QUEUE,
    backend,
    logger,
    retry: deliveryRetryOptions(retry),
  });
  // Alias addresses in a job may carry a sub-address tag: resolve them as the SMTP process does.
  const routes = createAliasResolver({
    findRoute: (address) => get(container, 'aliases').findRoute(address),
    ttlMs: 0,
  });
  // The shared domain's key signs the DSNs (From: MAILER-DAEMON@SMTP_DOMAIN), so they pass DMARC.
  const domains = get(container, 'domains');
  const record = async (
    alias: string,
    outcome: 'bounced' | 'lost',
    details: { reason: string; messageId: string },
  ): Promise<void> => {
    const route = await routes.route(alias);
    if (route !== null) await get(container, 'aliases').recordOutcome(route.id, outcome, details);
  };
  const shared = await domains.ensureShared(config.smtp.domain);
  const signing = await domains.signingKey(shared.name);
  const handler = createDeliveryHandler({
    domain: shared.name,
    ...(signing === null
      ? {}
      : { dkim: { selector: signing.selector, privateKey: signing.privateKeyPem } }),
    relays: relays.map(parseRelay),
    policy: relayPolicy(metrics, logger, 'worker-relay', timeoutMs),
    metrics,
    logger,
    lifetimeMs: retry.lifetimeMs,
    bounceLifetimeMs: retry.bounceLifetimeMs,
    recordBounce: (alias, details) => record(alias, 'bounced', details),
  });
  delivery = handler;
  // Dead letters the handler did not bounce itself (spool gone, lease lost on the last attempt,
  // any error on the last attempt): bounce from the spool; when the DSN is deferred and there is
  // still time, queue the job again (its next run delivers or bounces it); else log and count the
  // loss and drop the spool.
  const settleDead = createDeadDeliveryHandler({
    forwarder: handler.forwarder,
    record,
    metrics,
    logger,
    retry: async (job) => {
      await queue.add(job, { delayMs: retry.maxDelayMs });
    },
    expired: (job) =>
      Date.now() - queuedAt(job, Date.now()) >= retry.lifetimeMs + retry.bounceLifetimeMs,
  });
  queue.onDead((event) => {
    const settle = async (): Promise<void> => {
      // The job comes with the event whether this worker ran its last attempt or a claim found
      // its lease expired; a custom queue backend may give only the id, and the dead letters
      // are searched.
      const payload = event.job?.payload ?? (await findDeadLetter(queue, event.id))?.payload;
      if (payload === undefined)
        logger.error({ jobId: event.id }, 'dead delivery not found in the dead letters');
      else await settleDead(payload, event.error.message);
    };
    settle().catch((error: unknown) =>
      logger.error({ err: error, jobId: event.id }, 'could not settle a dead delivery'),
    );
  });
  workers.push(
    queue.process((job) => handler.handle(job), {
      concurrency: 8,
      timeoutMs: timeoutMs * 2,
    }),
  );
  const systemMail = new SyncQueue<SystemMail>({ name: SYSTEM_MAIL_QUEUE, backend, logger });
  const mailer = new RelayMailer(relays, `no-reply@${config.smtp.domain}`, timeoutMs);
  workers.push(
    systemMail.process((job) => mailer.send(job.payload), {
      concurrency: 4,
      timeoutMs: timeoutMs * 2,
    }),
  );
  depthTimer = setInterval(() => {
    queue.stats().then(
      (stats) => {
        for (const state of ['waiting', 'delayed', 'active', 'dead'] as const)
          metrics.queueDepth.set({ queue: DELIVERY_QUEUE, state }, stats[state]);
      },
      () => undefined,
    );
  }, 5_000);
  depthTimer.unref();
}
const metricsServer =
  config.worker.metricsPort === undefined
    ? undefined
    : await serveMetrics(metrics, {
        host: '127.0.0.1',
        port: config.worker.metricsPort,
        token: config.metricsToken,
      });
announceReady('worker', 0, metricsServer?.port);
logger.info({ metricsPort: metricsServer?.port }, 'worker ready');

onShutdown(async () => {
  clearInterval(depthTimer);
  await metricsServer?.close();
  await Promise.all(workers.map((worker) => worker.close({ timeoutMs: 10_000 })));
  await delivery?.close();
  await disposeContainer(container);
});
