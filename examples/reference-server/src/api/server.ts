import { AuthError } from '@postern/auth';
import type { FastifyInstance } from 'fastify';
import type { DependencyContainer } from 'tsyringe';
import { get } from '../container.js';
import { ServerError } from '../errors.js';
import type { HealthCheck } from '../health.js';
import { registerAccountRoutes } from './account-routes.js';
import { registerAliasRoutes } from './alias-routes.js';
import { buildApi } from './app.js';
import { registerDestinationRoutes } from './destination-routes.js';
import { registerDomainRoutes } from './domain-routes.js';

/** Options of `createApiServer`. */
export interface ApiServerOptions {
  /** Extra readiness checks by name (the SMTP process's EHLO check is added by the API main). */
  readiness?: Readonly<Record<string, HealthCheck>>;
}

/** The whole HTTP API from a container: cross-cutting parts, then accounts, aliases, destinations and domains. */
export async function createApiServer(
  container: DependencyContainer,
  options: ApiServerOptions = {},
): Promise<FastifyInstance> {
  const config = get(container, 'config');
  const auth = get(container, 'auth');
  const database = get(container, 'database');
  const redis = get(container, 'redis');
  const limiters = get(container, 'limiters');
  const metrics = get(container, 'metrics');
  const audit = get(container, 'audit');
  const development =
    config.databaseUrl === undefined ||
    config.redisUrl === undefined ||
    (config.smtp.relays ?? []).length === 0;

  const readiness: Record<string, HealthCheck> = {
    postgres: async () => {
      await database.pool.query('SELECT 1');
    },
    ...options.readiness,
  };
  if (redis !== null) {
    readiness['redis'] = async () => {
      if ((await redis.ping()) !== 'PONG') throw new Error('unexpected PING answer');
    };
  }

  const app = await buildApi({
    logger: get(container, 'logger'),
    metrics,
    readiness,
    readinessTimeoutMs: config.api.readinessTimeoutMs,
    openapi: config.api.openapi,
    // With a listener of its own (started by the API main), /metrics stays off the public one.
    metricsRoute: config.api.metricsPort === undefined,
    metricsToken: config.metricsToken,
    trustProxy: config.api.trustProxy,
    ...(development && (config.smtp.relays ?? []).length === 0
      ? { outbox: get(container, 'outbox') }
      : {}),
    authenticate: async (token) => {
      try {
        // checkSession: a logout or "log out everywhere" takes effect at once, not at token expiry.
        const claims = await auth.verifyAccessToken(token, { checkSession: true });
        return { userId: claims.sub, sessionId: claims.sid };
      } catch (error) {
        if (AuthError.isInstance(error))
          throw new ServerError('UNAUTHENTICATED', 'the access token is invalid or expired', {
            status: 401,
            cause: error,
          });
        throw error;
      }
    },
  });
  registerAccountRoutes(app, {
    auth,
    users: get(container, 'authStore'),
    mailer: get(container, 'mailer'),
    audit,
    metrics,
    refreshTokenIn: config.api.refreshTokenIn,
    publicUrl: config.publicUrl,
    limits: {
      login: limiters.login,
      register: limiters.register,
      registerWarning: limiters.registerWarning,
      reset: limiters.reset,
    },
  });
  registerAliasRoutes(app, {
    aliases: get(container, 'aliases'),
    audit,
    notifier: get(container, 'notifier'),
    createLimiter: limiters.aliasCreate,
  });
  registerDestinationRoutes(app, {
    destinations: get(container, 'destinations'),
    audit,
    mailer: get(container, 'mailer'),
    publicUrl: config.publicUrl,
    addLimiter: limiters.destinationAdd,
    confirmLimiter: limiters.destinationConfirm,
  });
  registerDomainRoutes(app, {
    domains: get(container, 'domains'),
    audit,
    dns: get(container, 'dns'),
    notifier: get(container, 'domainNotifier'),
    changeLimiter: limiters.domainChange,
  });
  return app;
}
