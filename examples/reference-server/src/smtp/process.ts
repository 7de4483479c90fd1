import { join, resolve as resolvePath } from 'node:path';
import { circuitBreaker, timeout, wrap } from '@postern/resilience';
import { SmtpForwarder } from '@postern/smtp-forward';
import type {
  BoundAddress,
  DeliveryMode,
  DeliveryQueue,
  Policy,
  RelayOptions,
  Resolver,
} from '@postern/smtp-forward';
import type { Logger } from '@postern/logger';
import type { Redis } from 'ioredis';
import type { DependencyContainer } from 'tsyringe';
import {
  createAliasResolver,
  keepCachesCoherent,
  subscribeToAliasChanges,
  subscribeToChanges,
  toRecipient,
} from '../alias-resolver.js';
import { get } from '../container.js';
import { createDkimKeySelector } from '../dkim-keys.js';
import type { Metrics } from '../metrics.js';
import { normalisedSmtpLimiter, reasonLabel } from './keys.js';
import { OutboxDeliveryQueue } from './outbox-queue.js';

/** Options of `startSmtp`. */
export interface StartSmtpOptions {
  port: number;
  host: string;
  /** Where `queued` delivery hands messages in production (the sync-queue producer). Default: none. */
  deliveryQueue?: DeliveryQueue;
}

/** A running SMTP process: the forwarder, where it listens, and how to stop it. */
export interface SmtpProcess {
  forwarder: SmtpForwarder;
  address: BoundAddress;
  close(): Promise<void>;
}

/** Parses `smtp://user:pass@host:port` (or `smtps://`) into the forwarder's relay options. */
export function parseRelay(url: string): RelayOptions {
  const parsed = new URL(url);
  const secure = parsed.protocol === 'smtps:';
  const relay: RelayOptions = {
    host: parsed.hostname,
    port: parsed.port === '' ? (secure ? 465 : 25) : Number(parsed.port),
    secure,
  };
  if (parsed.username !== '')
    relay.auth = {
      user: decodeURIComponent(parsed.username),
      pass: decodeURIComponent(parsed.password),
    };
  return relay;
}

const BREAKER_LEVEL: Record<string, number> = { closed: 0, 'half-open': 0.5, open: 1, isolated: 1 };

/**
 * A timeout inside a circuit breaker (opens after 5 consecutive failures, half-opens after 30 s)
 * for each relay attempt; its state is the `postern_circuit_breaker_open{breaker=name}` gauge.
 */
export function relayPolicy(
  metrics: Pick<Metrics, 'breakerState'>,
  logger: Pick<Logger, 'warn'>,
  name: string,
  timeoutMs: number,
): Policy {
  const breaker = circuitBreaker({
    strategy: { kind: 'consecutive', threshold: 5 },
    halfOpenAfterMs: 30_000,
  });
  breaker.onStateChange((change) => {
    metrics.breakerState.set({ breaker: name }, BREAKER_LEVEL[change.to] ?? 1);
    logger.warn(
      { breaker: name, from: change.from, to: change.to },
      'relay circuit breaker changed state',
    );
  });
  metrics.breakerState.set({ breaker: name }, 0);
  return wrap(breaker, timeout(timeoutMs));
}

/** Adds every spooled job not yet settled to the delivery queue again; resolves with how many. */
export async function requeueSpool(
  forwarder: Pick<SmtpForwarder, 'pendingSpool'>,
  queue: DeliveryQueue,
  logger: Pick<Logger, 'info'>,
): Promise<number> {
  const pending = await forwarder.pendingSpool();
  for (const job of pending) await queue.add(job);
  if (pending.length > 0) logger.info({ jobs: pending.length }, 'spooled mail queued again');
  return pending.length;
}

/**
 * Starts the forwarder with everything the container holds: aliases from PostgreSQL through a
 * cache invalidated over Redis pub/sub, each alias domain's DKIM key (cached), SRS, per-IP and per-sender
 * limits on Redis, and a timeout inside a circuit breaker around every relay attempt.
 */
export async function startSmtp(
  container: DependencyContainer,
  options: StartSmtpOptions,
): Promise<SmtpProcess> {
  const config = get(container, 'config');
  const logger = get(container, 'logger');
  const metrics = get(container, 'metrics');
  const aliases = get(container, 'aliases');
  const redis = get(container, 'redis');

  const shared = await get(container, 'domains').ensureShared(config.smtp.domain);
  const domains = get(container, 'domains');
  const signing = await domains.signingKey(shared.name);
  // Custom domains sign with their own key (d= their domain, aligned with a rewritten From), read
  // from PostgreSQL per alias domain through a short-lived cache; the shared key is the fallback.
  // Like the alias cache: off with no Redis, since nothing would tell this process of a change.
  const dkimKeys = createDkimKeySelector({
    lookup: (name) => domains.signingKey(name),
    ttlMs: redis === null ? 0 : config.smtp.aliasCacheTtlMs,
  });
  const sharedKey =
    signing === null
      ? undefined
      : { selector: signing.selector, privateKey: signing.privateKeyPem, domain: shared.name };
  // With no Redis there is no invalidation channel: run without the cache so a disabled alias
  // is refused at once.
  const resolver = createAliasResolver({
    findRoute: (address) => aliases.findRoute(address),
    ttlMs: redis === null ? 0 : config.smtp.aliasCacheTtlMs,
  });
  let unsubscribe: (() => Promise<void>) | undefined;
  let subscriber: Redis | undefined;
  if (redis !== null) {
    subscriber = redis.duplicate();
    const fromAliases = await subscribeToAliasChanges(
      subscriber,
      `${config.redisKeyPrefix}alias-changed`,
      resolver,
    );
    // A deleted or re-added domain: its key, and the routes of the aliases deleted with it.
    const fromDomains = await subscribeToChanges(
      subscriber,
      `${config.redisKeyPrefix}domain-changed`,
      (domain) => {
        dkimKeys.invalidate(domain);
        resolver.invalidateDomain(domain);
      },
    );
    // A message published while the subscriber reconnects is lost: both caches are emptied and
    // bypassed from the moment the connection drops until it is subscribed again.
    keepCachesCoherent(
      subscriber,
      [`${config.redisKeyPrefix}alias-changed`, `${config.redisKeyPrefix}domain-changed`],
      [resolver, dkimKeys],
    );
    unsubscribe = async () => {
      await fromAliases();
      await fromDomains();
    };
  }

  // Aliases met in each session, so an accepted message is counted on the aliases it was for.
  const sessionAliases = new Map<string, Set<string>>();
  const resolveRecipient: Resolver = async (address, context) => {
    const route = await resolver.route(address);
    if (route !== null) {
      if (route.enabled) {
        const seen = sessionAliases.get(context.sessionId) ?? new Set<string>();
        seen.add(route.id);
        sessionAliases.set(context.sessionId, seen);
      } else {
        await aliases.recordOutcome(route.id, 'rejected', { reason: 'disabled' });
      }
    }
    return toRecipient(route);
  };

  const relays = (config.smtp.relays ?? []).map(parseRelay);
  const policy = relayPolicy(metrics, logger, 'smtp-relay', config.smtp.relayTimeoutMs);

  let delivery: DeliveryMode = 'sync';
  const spoolDir = join(resolvePath(config.dataDir), 'spool');
  if (relays.length === 0)
    delivery = {
      mode: 'queued',
      queue: new OutboxDeliveryQueue(get(container, 'outbox')),
      spoolDir,
    };
  else if (config.smtp.delivery === 'queued' && options.deliveryQueue !== undefined)
    delivery = { mode: 'queued', queue: options.deliveryQueue, spoolDir };

  const forwarder = new SmtpForwarder({
    domain: shared.name,
    resolver: resolveRecipient,
    ...(relays.length > 0 ? { transport: { relays } } : {}),
    delivery,
    fromRewrite: config.smtp.fromRewrite,
    srs: { secrets: [config.srsSecret.reveal()] },
    dkim: {
      ...(sharedKey === undefined ? {} : { keys: [sharedKey], fallback: sharedKey }),
      select: (context) => dkimKeys.select(context),
    },
    // Per-sender keys without case, +tags or SRS wrapping: one sender, one budget.
    rateLimiter: normalisedSmtpLimiter(get(container, 'limiters').smtp),
    policy,
    logger,
    limits: { maxMessageBytes: 25 * 1024 * 1024 },
  });

  forwarder.onAccepted((event) => {
    metrics.smtpMessages.inc({ outcome: 'accepted', reason: 'ok' });
    const ids = sessionAliases.get(event.sessionId);
    sessionAliases.delete(event.sessionId);
    for (const id of ids ?? []) {
      aliases
        .recordOutcome(id, 'forwarded', { messageId: event.messageId })
        .catch((error: unknown) =>
          logger.error({ err: error }, 'could not count a forwarded message'),
        );
    }
  });
  forwarder.onRejected((event) => {
    metrics.smtpMessages.inc({ outcome: 'rejected', reason: reasonLabel(event.reason) });
    // A refused message ends its transaction; a refused recipient does not (the others stand).
    if (event.stage === 'data') sessionAliases.delete(event.sessionId);
  });
  // A session that named an alias and left without sending leaves nothing behind.
  forwarder.onSessionClosed((event) => sessionAliases.delete(event.sessionId));
  forwarder.onForwarded(() => metrics.smtpMessages.inc({ outcome: 'forwarded', reason: 'ok' }));
  forwarder.onDeferred((event) =>
    metrics.smtpMessages.inc({ outcome: 'deferred', reason: reasonLabel(event.reason) }),
  );
  forwarder.onBounced((event) =>
    metrics.smtpMessages.inc({ outcome: 'bounced', reason: reasonLabel(event.reason) }),
  );

  const address = await forwarder.listen({ port: options.port, host: options.host });
  if (delivery !== 'sync') {
    // Mail spooled before a crash, or whose job the queue lost (Redis restarted without its data),
    // is queued again: nothing that got 250 waits for ever. A job the queue still holds is
    // harmless to add twice: it coalesces while it waits (same key), and a copy that runs after
    // the job was settled finds it settled and sends nothing. In the background, after listen:
    // with Redis down the process still starts and answers 451, and this waits for Redis.
    requeueSpool(forwarder, delivery.queue, logger).catch((error: unknown) =>
      logger.error({ err: error }, 'could not queue spooled mail again; the next start will'),
    );
  }
  logger.info(
    {
      host: address.host,
      port: address.port,
      domain: shared.name,
      relays: relays.length,
      queued: delivery !== 'sync',
    },
    'smtp listening',
  );
  return {
    forwarder,
    address,
    async close() {
      await forwarder.close({ timeoutMs: 10_000 });
      if (unsubscribe !== undefined) await unsubscribe().catch(() => undefined);
      subscriber?.disconnect();
    },
  };
}
