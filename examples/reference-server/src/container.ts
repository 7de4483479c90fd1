import 'reflect-metadata';
import { promises as dnsPromises } from 'node:dns';
import { join, resolve } from 'node:path';
import { AuthService, MemoryAuthStore } from '@postern/auth';
import type { AuthStore } from '@postern/auth';
import { RedisAuthStore } from '@postern/auth/redis';
import { createLogger } from '@postern/logger';
import type { Logger } from '@postern/logger';
import { MemoryBackend, createRateLimiter } from '@postern/rate-limit';
import type { RateLimitBackend } from '@postern/rate-limit';
import { RedisBackend } from '@postern/rate-limit/redis';
import { SyncQueue } from '@postern/sync-queue';
import { RedisBackend as QueueRedisBackend } from '@postern/sync-queue/redis';
import { Redis } from 'ioredis';
import { container as rootContainer, instanceCachingFactory } from 'tsyringe';
import type { DependencyContainer } from 'tsyringe';
import { RedisAliasNotifier, noopAliasNotifier } from './alias-resolver.js';
import { AliasRepository } from './aliases.js';
import { AuditLog } from './audit.js';
import type { ServerConfig } from './config.js';
import { createDatabase } from './db/connect.js';
import type { DatabaseHandle } from './db/connect.js';
import { DestinationRepository } from './destinations.js';
import { DomainRepository } from './domains.js';
import type { DnsResolver } from './domains.js';
import { OutboxMailer, QueueMailer, RelayMailer } from './mailer.js';
import type { SystemMail } from './mailer.js';
import type { Mailer } from './mailer.js';
import { createMetrics } from './metrics.js';
import type { Metrics } from './metrics.js';
import { Outbox } from './outbox.js';
import { PostgresAuthStore } from './postgres-auth-store.js';
import type { AliasChangeNotifier, DomainChangeNotifier, RateLimiter } from './ports.js';
import { SYSTEM_MAIL_QUEUE } from './worker.js';

/** The rate limiters of the service, all on one backend (Redis when configured). */
export interface Limiters {
  login: RateLimiter;
  register: RateLimiter;
  /** One "someone tried to register with your address" warning per address per window. */
  registerWarning: RateLimiter;
  reset: RateLimiter;
  aliasCreate: RateLimiter;
  destinationAdd: RateLimiter;
  /** Per IP: tokens presented to the unauthenticated `POST /destinations/confirm`. */
  destinationConfirm: RateLimiter;
  domainChange: RateLimiter;
  smtp: RateLimiter;
}

/** Which process the container serves: names its logger and metrics. */
export type ProcessName = 'api' | 'smtp' | 'worker';

/** Symbol tokens: the only names anything is registered under. */
export const TOKENS = {
  config: Symbol('config'),
  processName: Symbol('processName'),
  logger: Symbol('logger'),
  metrics: Symbol('metrics'),
  database: Symbol('database'),
  redis: Symbol('redis'),
  aliases: Symbol('aliases'),
  domains: Symbol('domains'),
  destinations: Symbol('destinations'),
  audit: Symbol('audit'),
  authStore: Symbol('authStore'),
  auth: Symbol('auth'),
  limiters: Symbol('limiters'),
  notifier: Symbol('notifier'),
  domainNotifier: Symbol('domainNotifier'),
  outbox: Symbol('outbox'),
  mailer: Symbol('mailer'),
  dns: Symbol('dns'),
} as const;

/** The types behind the tokens. */
export interface Registry {
  config: ServerConfig;
  processName: ProcessName;
  logger: Logger;
  metrics: Metrics;
  database: DatabaseHandle;
  redis: Redis | null;
  aliases: AliasRepository;
  domains: DomainRepository;
  destinations: DestinationRepository;
  audit: AuditLog;
  authStore: AuthStore;
  auth: AuthService;
  limiters: Limiters;
  notifier: AliasChangeNotifier;
  domainNotifier: DomainChangeNotifier;
  outbox: Outbox;
  mailer: Mailer;
  dns: DnsResolver;
}

/** Typed `resolve`: `get(container, 'auth')` is an `AuthService`. */
export function get<K extends keyof Registry>(
  container: DependencyContainer,
  name: K,
): Registry[K] {
  return container.resolve<Registry[K]>(TOKENS[name]);
}

/** Replacements for tests (e.g. a DNS resolver answering from a map); each is registered with `useValue`. */
export type Overrides = Partial<Registry>;

/** The JWT issuer and audience of the service's access tokens. */
export const TOKEN_ISSUER = 'postern';
export const TOKEN_AUDIENCE = 'postern-api';

const instantiated = new WeakMap<DependencyContainer, Set<keyof Registry>>();

function register<K extends keyof Registry>(
  container: DependencyContainer,
  name: K,
  factory: (c: DependencyContainer) => Registry[K],
): void {
  container.register(TOKENS[name], {
    useFactory: instanceCachingFactory((c) => {
      instantiated.get(container)?.add(name);
      return factory(c);
    }),
  });
}

/**
 * Builds the composition root of one process. Every dependency is created lazily on first
 * resolve and once per container, so the SMTP process never opens what only the API needs.
 */
export function createContainer(
  config: ServerConfig,
  processName: ProcessName,
  overrides: Overrides = {},
): DependencyContainer {
  const container = rootContainer.createChildContainer();
  instantiated.set(container, new Set());
  container.register(TOKENS.config, { useValue: config });
  container.register(TOKENS.processName, { useValue: processName });
  const dataDir = resolve(config.dataDir);

  register(container, 'logger', () =>
    createLogger({ name: `postern-${processName}`, level: config.logLevel }),
  );
  register(container, 'metrics', () => createMetrics(processName));
  register(container, 'database', () => {
    if (config.databaseUrl === undefined)
      throw new Error('DATABASE_URL is not set: the launcher sets it for the embedded database');
    return createDatabase({ url: config.databaseUrl });
  });
  register(container, 'redis', () => {
    if (config.redisUrl === undefined) return null;
    // Commands fail fast while Redis is away instead of queueing without bound.
    return new Redis(config.redisUrl, {
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      connectTimeout: 5_000,
    });
  });
  register(
    container,
    'aliases',
    (c) => new AliasRepository(get(c, 'database').db, { destinations: get(c, 'destinations') }),
  );
  register(container, 'destinations', (c) => new DestinationRepository(get(c, 'database').db));
  register(
    container,
    'domains',
    (c) => new DomainRepository(get(c, 'database').db, { mxHost: config.smtp.mxHost }),
  );
  register(container, 'audit', (c) => new AuditLog(get(c, 'database').db));
  register(container, 'authStore', (c) => {
    const redis = get(c, 'redis');
    const sessions =
      redis === null
        ? new MemoryAuthStore()
        : new RedisAuthStore({ redis, prefix: `${config.redisKeyPrefix}auth:` });
    return new PostgresAuthStore({ db: get(c, 'database').db, sessions });
  });
  register(container, 'auth', (c) => {
    const metrics = get(c, 'metrics');
    const logger = get(c, 'logger');
    return new AuthService({
      store: get(c, 'authStore'),
      tokens: {
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        keys: [{ kid: 'k1', alg: 'HS256', secret: config.jwtSecret.reveal() }],
      },
      onEvent: (event) => {
        if (event.type === 'token_reuse') metrics.loginOutcomes.inc({ outcome: 'token_reuse' });
        logger.info(
          { event: event.type, userId: event.userId, reason: event.reason },
          'auth event',
        );
      },
    });
  });
  register(container, 'limiters', (c) => {
    const redis = get(c, 'redis');
    const backend: RateLimitBackend =
      redis === null ? new MemoryBackend() : new RedisBackend({ redis });
    // One backend, one key prefix per limit: `<prefix>rl:<name>`.
    const limiter = (name: string, limit: number, periodMs: number): RateLimiter =>
      createRateLimiter({ limit, periodMs, backend, prefix: `${config.redisKeyPrefix}rl:${name}` });
    const { limits } = config;
    return {
      login: limiter('login', limits.loginPerMinute, 60_000),
      register: limiter('register', limits.registerPerHour, 3_600_000),
      registerWarning: limiter('register-warning', 1, limits.registerWarningIntervalMs),
      reset: limiter('reset', limits.resetPerHour, 3_600_000),
      aliasCreate: limiter('alias', limits.aliasCreatePerHour, 3_600_000),
      destinationAdd: limiter('destination', limits.destinationAddPerHour, 3_600_000),
      destinationConfirm: limiter(
        'destination-confirm',
        limits.destinationConfirmPerHour,
        3_600_000,
      ),
      domainChange: limiter('domain', limits.domainChangePerHour, 3_600_000),
      smtp: limiter('smtp', limits.smtpPerMinute, 60_000),
    };
  });
  register(container, 'notifier', (c) => {
    const redis = get(c, 'redis');
    return redis === null
      ? noopAliasNotifier
      : new RedisAliasNotifier(redis, `${config.redisKeyPrefix}alias-changed`);
  });
  register(container, 'domainNotifier', (c) => {
    const redis = get(c, 'redis');
    return redis === null
      ? noopAliasNotifier
      : new RedisAliasNotifier(redis, `${config.redisKeyPrefix}domain-changed`);
  });
  register(container, 'outbox', () => new Outbox(join(dataDir, 'outbox')));
  register(container, 'mailer', (c) => {
    const from = `no-reply@${config.smtp.domain}`;
    const relays = config.smtp.relays ?? [];
    if (relays.length === 0) return new OutboxMailer(get(c, 'outbox'), from);
    const redis = get(c, 'redis');
    if (redis === null) return new RelayMailer(relays, from, config.smtp.relayTimeoutMs);
    // With Redis, system mail goes through a queue the workers drain, retried on relay failures.
    const backend = new QueueRedisBackend({ redis, prefix: `${config.redisKeyPrefix}sq:` });
    return new QueueMailer(new SyncQueue<SystemMail>({ name: SYSTEM_MAIL_QUEUE, backend }));
  });
  register(container, 'dns', () => dnsPromises);

  for (const [name, value] of Object.entries(overrides)) {
    container.register(TOKENS[name as keyof Registry], { useValue: value });
  }
  return container;
}

/** Closes what the container opened, in reverse order of need: Redis, then the database pool. */
export async function disposeContainer(container: DependencyContainer): Promise<void> {
  if (created(container, 'redis')) {
    const redis = get(container, 'redis');
    if (redis !== null) await redis.quit().catch(() => redis.disconnect());
  }
  if (created(container, 'database')) await get(container, 'database').destroy();
}

function created(container: DependencyContainer, name: keyof Registry): boolean {
  return instantiated.get(container)?.has(name) ?? false;
}
