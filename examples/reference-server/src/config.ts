import {
  ConfigError,
  bool,
  duration,
  integer,
  list,
  loadConfig,
  modeFromNodeEnv,
  port,
  secret,
  url,
} from '@postern/config';
import type { Config, Mode } from '@postern/config';
import * as z from 'zod';
import type { DeliveryRetry } from './worker.js';

const postgresUrl = (): ReturnType<typeof url> => url({ protocols: ['postgres', 'postgresql'] });
const redisUrl = (): ReturnType<typeof url> => url({ protocols: ['redis', 'rediss'] });

/** The variables the reference server reads; in production the embedded fallbacks are not optional. */
export function configShape(mode: Mode) {
  const production = mode === 'production';
  return {
    // Production refuses the first-look fallbacks: both URLs are required there.
    databaseUrl: production ? postgresUrl() : postgresUrl().optional(),
    redisUrl: production ? redisUrl() : redisUrl().optional(),
    /** Prefix of every Redis key and channel, so several deployments (or test runs) share one Redis. */
    redisKeyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9:_-]{1,64}$/)
      .default('postern:'),
    publicUrl: url().default('http://127.0.0.1:3000'),
    dataDir: z.string().min(1).default('.postern-data'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
    api: {
      host: z.string().min(1).default('127.0.0.1'),
      port: port({ allowZero: true }).default(3000),
      trustProxy: bool().default(false),
      refreshTokenIn: z.enum(['body', 'cookie']).default('body'),
      readinessTimeoutMs: duration().default(2_000),
      /** Serve the OpenAPI document (`/docs/json`) and its UI (`/docs`): on in development, off in production. */
      openapi: bool().default(!production),
      /**
       * Port of a listener of the API's own for `/metrics` (on `API_HOST`); unset: `/metrics` is on
       * the public API listener.
       */
      metricsPort: port({ allowZero: true }).optional(),
    },
    smtp: {
      host: z.string().min(1).default('127.0.0.1'),
      port: port({ allowZero: true }).default(2525),
      /** The shared domain every user may create aliases on. */
      domain: z.string().min(1).default('postern.localhost'),
      /** The MX host name custom domains must point at. */
      mxHost: z.string().min(1).default('mx.postern.localhost'),
      /** Outbound relays (smtp://user:pass@host:port), tried in order; none = the outbox (development only). */
      relays: list(url({ protocols: ['smtp', 'smtps'] })).optional(),
      delivery: z.enum(['sync', 'queued']).default('sync'),
      /** When the forwarder rewrites From to the alias so DMARC passes (see @postern/smtp-forward). */
      fromRewrite: z.enum(['never', 'dmarc-strict', 'always']).default('dmarc-strict'),
      aliasCacheTtlMs: duration().default(30_000),
      relayTimeoutMs: duration().default(30_000),
      /** Queued delivery: age at which a message still not delivered is bounced (Postfix's default: 5 days). */
      queueLifetimeMs: duration({ minMs: 1_000 }).default(5 * 24 * 3_600_000),
      /** Queued delivery: how long after that a DSN the relays keep deferring is retried (Postfix's `bounce_queue_lifetime`). */
      bounceLifetimeMs: duration().default(5 * 24 * 3_600_000),
      /** Queued delivery: delay before the first retry; it doubles up to `retryMaxDelayMs`. */
      retryDelayMs: duration({ minMs: 100 }).default(60_000),
      /** Queued delivery: longest delay between two tries. */
      retryMaxDelayMs: duration({ minMs: 100 }).default(3_600_000),
      /** Port of the SMTP process's own `/metrics` (Prometheus); unset: not served. */
      metricsPort: port({ allowZero: true }).optional(),
    },
    worker: {
      /** Port of the worker's own `/metrics` (Prometheus); unset: not served. */
      metricsPort: port({ allowZero: true }).optional(),
    },
    limits: {
      loginPerMinute: integer({ min: 1 }).default(10),
      registerPerHour: integer({ min: 1 }).default(5),
      resetPerHour: integer({ min: 1 }).default(5),
      aliasCreatePerHour: integer({ min: 1 }).default(30),
      /** Per user: destinations added or re-sent (each mails a verification token to a stranger's address). */
      destinationAddPerHour: integer({ min: 1 }).default(10),
      /** Per IP: verification tokens presented without a session (`POST /destinations/confirm`). */
      destinationConfirmPerHour: integer({ min: 1 }).default(20),
      /** Per user: custom domains added or verified (each addition generates an RSA key). */
      domainChangePerHour: integer({ min: 1 }).default(20),
      smtpPerMinute: integer({ min: 1 }).default(60),
      /**
       * Per address: the shortest time between two "someone tried to register with your address"
       * warnings, so registering someone else's address again and again cannot mail-bomb them.
       */
      registerWarningIntervalMs: duration({ minMs: 1_000 }).default(3_600_000),
    },
    /** How the launcher restarts a child that crashed, and when it gives up (see `Supervisor`). */
    supervisor: {
      /** Delay before the first restart; it doubles on each crash in a row. */
      restartDelayMs: duration({ minMs: 1 }).default(500),
      /** Longest delay between two restarts. */
      maxRestartDelayMs: duration({ minMs: 1 }).default(30_000),
      /** A child that ran this long restarts after `restartDelayMs` again. */
      stableAfterMs: duration({ minMs: 1 }).default(60_000),
      /** Crashes of one child tolerated within `crashWindowMs`; one more stops everything and exits 70. */
      maxCrashes: integer({ min: 1 }).default(5),
      /** The sliding window crashes are counted in. */
      crashWindowMs: duration({ minMs: 1_000 }).default(300_000),
    },
    jwtSecret: secret({ default: 'postern-development-jwt-signing-key' }),
    srsSecret: secret({ default: 'postern-development-srs-secret-key' }),
    /** Bearer token every `/metrics` (API, SMTP process, worker) requires; unset: no token asked. */
    metricsToken: secret().optional(),
  };
}

/** Which process loads the configuration: some rules hold for one process only. */
export type ConfigProcess = 'api' | 'smtp' | 'worker';

const METRICS_EXPOSED =
  'required in production while /metrics is served on the public API listener; set it, or set API_METRICS_PORT to serve /metrics on a listener of its own';

/** The loaded configuration, and the mode it was loaded in. */
export type ServerConfig = Config<ReturnType<typeof configShape>>;

/** The mode `NODE_ENV` selects: anything but unset, development, dev or test is production. */
export function serverMode(env: Readonly<Record<string, string | undefined>> = process.env): Mode {
  return modeFromNodeEnv(env['NODE_ENV']);
}

/**
 * Loads the configuration; throws `ConfigError` listing every problem. In production a missing
 * DATABASE_URL, REDIS_URL or SMTP_RELAYS, or any default or weak secret, is an error, never a warning;
 * so is, for the API process (`processName` 'api'), a `/metrics` on the public listener without
 * METRICS_TOKEN.
 */
export function loadServerConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  processName?: ConfigProcess,
): ServerConfig {
  const mode = serverMode(env);
  const shape = configShape(mode);
  if (mode === 'production') {
    // No relay in production would silently drop mail into a local outbox: refuse it.
    Object.assign(shape.smtp, { relays: list(url({ protocols: ['smtp', 'smtps'] })) });
    // Metrics name routes, outcomes and volumes: not for anyone who can reach the public API.
    if (processName === 'api' && isUnset(env['API_METRICS_PORT']))
      Object.assign(shape, { metricsToken: secret().describe(METRICS_EXPOSED) });
  }
  const config = loadConfig(shape, { env, mode });
  const { restartDelayMs, maxRestartDelayMs } = config.supervisor;
  if (maxRestartDelayMs < restartDelayMs) {
    throw ConfigError.fromIssues(
      [
        {
          code: 'INVALID',
          path: ['supervisor', 'maxRestartDelayMs'],
          env: 'SUPERVISOR_MAX_RESTART_DELAY_MS',
          message: 'must be at least SUPERVISOR_RESTART_DELAY_MS',
        },
      ],
      config.warnings,
    );
  }
  return config;
}

/** Whether a variable counts as not set (loadConfig treats empty and blank values so). */
function isUnset(value: string | undefined): boolean {
  return value === undefined || value.trim() === '';
}

/** The retry schedule of queued delivery, from the `SMTP_QUEUE_LIFETIME_MS`, `SMTP_BOUNCE_LIFETIME_MS` and `SMTP_RETRY_*` settings. */
export function deliveryRetry(config: ServerConfig): DeliveryRetry {
  return {
    lifetimeMs: config.smtp.queueLifetimeMs,
    bounceLifetimeMs: config.smtp.bounceLifetimeMs,
    initialDelayMs: config.smtp.retryDelayMs,
    maxDelayMs: config.smtp.retryMaxDelayMs,
  };
}

/** For process entries: loads the configuration, or prints every problem (no stack) and exits with 78 (EX_CONFIG). */
export function loadServerConfigOrExit(
  env: Readonly<Record<string, string | undefined>> = process.env,
  processName?: ConfigProcess,
): ServerConfig {
  try {
    return loadServerConfig(env, processName);
  } catch (error) {
    if (!ConfigError.isInstance(error)) throw error;
    console.error(error.message);
    process.exit(78);
  }
}
