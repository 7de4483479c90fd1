import { randomUUID } from 'node:crypto';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify from 'fastify';
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import type { Secret } from '@postern/config';
import { ServerError } from '../errors.js';
import type { ServerErrorCode } from '../errors.js';
import { runChecks } from '../health.js';
import type { HealthCheck } from '../health.js';
import { METRICS_CHALLENGE, metricsAuthorized } from '../metrics-server.js';
import type { Metrics } from '../metrics.js';
import type { Outbox } from '../outbox.js';
import type { Principal, RateLimiter } from '../ports.js';

/** What the HTTP API is built from; the container supplies every field. */
export interface ApiDependencies {
  logger: FastifyBaseLogger;
  metrics: Metrics;
  /** Checks behind `/health/ready`, by name (postgres, redis, smtp). */
  readiness: Readonly<Record<string, HealthCheck>>;
  /** Time each readiness check may take, in ms. Default: 2_000. */
  readinessTimeoutMs?: number;
  /** Resolves a bearer access token to its principal, or throws `UNAUTHENTICATED`. */
  authenticate: (accessToken: string) => Promise<Principal>;
  /** The development outbox, listed at `GET /dev/outbox`; absent in production. */
  outbox?: Outbox;
  /** Serve the OpenAPI document at /docs/json and its UI at /docs. Default: false. */
  openapi?: boolean;
  /**
   * Serve `GET /metrics` on this listener; false when the process serves it on a listener of its
   * own (`API_METRICS_PORT`). Default: true.
   */
  metricsRoute?: boolean;
  /** Bearer token `GET /metrics` requires (`METRICS_TOKEN`). Default: none asked. */
  metricsToken?: Secret | undefined;
  /**
   * Trust X-Forwarded-For: `true` trusts one hop (the load balancer in front, whose appended entry
   * becomes `request.ip`); a number trusts that many hops; a string or list names the proxies'
   * addresses or CIDRs (fastify's `trustProxy`). Default: false.
   */
  trustProxy?: boolean | number | string | string[];
  /** Largest request body, in bytes. Default: 64 KiB. */
  bodyLimitBytes?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyInstance {
    requireUser(request: FastifyRequest): Promise<Principal>;
    rateLimit(limiter: RateLimiter, key: string): Promise<void>;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The error body every failing route answers with. */
export const errorSchema = {
  type: 'object',
  required: ['code', 'message', 'requestId'],
  properties: {
    code: { type: 'string' },
    message: { type: 'string' },
    requestId: { type: 'string' },
    field: { type: 'string' },
    retryAfterMs: { type: 'integer' },
  },
} as const;

function send(reply: FastifyReply, request: FastifyRequest, error: ServerError): FastifyReply {
  if (error.retryAfterMs !== undefined)
    void reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
  const body: Record<string, unknown> = {
    code: error.code,
    message: error.message,
    requestId: request.id,
  };
  if (error.field !== undefined) body['field'] = error.field;
  if (error.retryAfterMs !== undefined) body['retryAfterMs'] = error.retryAfterMs;
  return reply.status(error.status).send(body);
}

/**
 * Fastify's `trustProxy`. Never fastify's own `true` (trust every hop): `request.ip` would then be
 * the left-most X-Forwarded-For entry, which the client writes itself, and every per-IP limit would
 * be keyed on a value of its choosing. `true` (and a number, which fastify would ignore) trusts that
 * many hops counted from the socket: the entries the load balancers appended.
 */
function trustedHops(
  trustProxy: ApiDependencies['trustProxy'],
): false | string | string[] | ((address: string, hop: number) => boolean) {
  if (trustProxy === undefined || trustProxy === false) return false;
  if (trustProxy === true) return (_address, hop) => hop < 1;
  if (typeof trustProxy === 'number') return (_address, hop) => hop < trustProxy;
  return trustProxy;
}

/** Maps anything thrown in a route to a `ServerError` with a stable code; unknown errors become INTERNAL. */
export function toServerError(error: unknown): ServerError {
  if (ServerError.isInstance(error)) return error;
  const fastifyError = error as Partial<FastifyError> & { validationContext?: string };
  if (Array.isArray(fastifyError.validation)) {
    const first = fastifyError.validation[0];
    const missing = (first?.params as { missingProperty?: unknown } | undefined)?.missingProperty;
    const path = (first?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const name =
      typeof missing === 'string' ? (path === '' ? missing : `${path}.${missing}`) : path;
    const field = [fastifyError.validationContext, name]
      .filter((part) => part !== undefined && part !== '')
      .join('.');
    return new ServerError(
      'VALIDATION_FAILED',
      `${field === '' ? 'request' : field} ${first?.message ?? 'is invalid'}`,
      { status: 400, field, cause: error },
    );
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code: ServerErrorCode =
      status === 404
        ? 'NOT_FOUND'
        : status === 401
          ? 'UNAUTHENTICATED'
          : status === 403
            ? 'FORBIDDEN'
            : 'VALIDATION_FAILED';
    return new ServerError(code, fastifyError.message ?? 'bad request', {
      status:
        status === 413 || status === 415 ? status : code === 'VALIDATION_FAILED' ? 400 : status,
      field: 'body',
      cause: error,
    });
  }
  return new ServerError('INTERNAL', 'internal error', { status: 500, cause: error });
}

/** Builds the API process's Fastify instance with the cross-cutting parts; routes are added by `register*Routes`. */
export async function buildApi(deps: ApiDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    trustProxy: trustedHops(deps.trustProxy),
    bodyLimit: deps.bodyLimitBytes ?? 64 * 1024,
    requestIdHeader: false,
    // An X-Request-Id from the caller is kept when it is a plain token; anything else is replaced,
    // so a header cannot inject text into logs.
    genReqId: (raw) => {
      const header = raw.headers['x-request-id'];
      return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.httpDuration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((error, request, reply) => {
    const serverError = toServerError(error);
    if (serverError.status >= 500) request.log.error({ err: error }, 'request failed');
    return send(reply, request, serverError);
  });
  app.setNotFoundHandler((request, reply) =>
    send(
      reply,
      request,
      new ServerError(
        'NOT_FOUND',
        `no route ${request.method} ${request.url.split('?')[0] ?? ''}`,
        { status: 404 },
      ),
    ),
  );

  await app.register(cookie);
  await app.register(helmet, {
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], imgSrc: ["'self'", 'data:'] } },
  });
  if (deps.openapi ?? false) {
    await app.register(swagger, {
      openapi: {
        info: {
          title: 'Postern reference server',
          version: '0.0.0',
          description: 'Email aliases: accounts, aliases, destinations, domains.',
        },
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        },
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  }

  app.decorate('requireUser', async (request: FastifyRequest): Promise<Principal> => {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header) : null;
    if (match?.[1] === undefined)
      throw new ServerError('UNAUTHENTICATED', 'a bearer access token is required', {
        status: 401,
      });
    const principal = await deps.authenticate(match[1]);
    request.principal = principal;
    return principal;
  });
  app.decorate('rateLimit', async (limiter: RateLimiter, key: string): Promise<void> => {
    const result = await limiter.consume(key);
    if (!result.allowed)
      throw new ServerError('RATE_LIMITED', 'too many requests; retry later', {
        status: 429,
        retryAfterMs: result.retryAfterMs,
      });
  });

  app.get(
    '/health/live',
    {
      schema: {
        hide: true,
        response: { 200: { type: 'object', properties: { status: { type: 'string' } } } },
      },
    },
    () => Promise.resolve({ status: 'ok' }),
  );
  app.get('/health/ready', { schema: { hide: true } }, async (request, reply) => {
    const report = await runChecks(deps.readiness, deps.readinessTimeoutMs ?? 2_000);
    if (report.ok) return reply.status(200).send(report);
    // Why a dependency failed names internal hosts and ports (`connect ECONNREFUSED 10.0.0.5:5432`):
    // it goes to the log; the public answer says only which one failed.
    request.log.warn({ checks: report.checks }, 'not ready');
    const checks: typeof report.checks = {};
    for (const [name, check] of Object.entries(report.checks))
      checks[name] = check.ok ? { ok: true } : { ok: false, error: 'unavailable' };
    return reply.status(503).send({ ok: false, checks });
  });
  if (deps.metricsRoute ?? true) {
    const token = deps.metricsToken;
    app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      if (!metricsAuthorized(request.headers.authorization, token)) {
        const refused = new ServerError('UNAUTHENTICATED', 'a bearer metrics token is required', {
          status: 401,
        });
        return send(reply.header('www-authenticate', METRICS_CHALLENGE), request, refused);
      }
      return reply
        .header('content-type', deps.metrics.registry.contentType)
        .send(await deps.metrics.registry.metrics());
    });
  }

  const outbox = deps.outbox;
  if (outbox !== undefined) {
    app.get(
      '/dev/outbox',
      {
        schema: {
          tags: ['development'],
          summary: 'Messages in the development outbox, newest first',
        },
      },
      async () => ({ items: await outbox.list() }),
    );
    app.get(
      '/dev/outbox/:id',
      {
        schema: {
          tags: ['development'],
          params: {
            type: 'object',
            required: ['id'],
            properties: { id: { type: 'string', pattern: '^[0-9]{13}-[0-9a-f]{12}$' } },
          },
        },
      },
      async (request, reply) => {
        const text = await outbox.read((request.params as { id: string }).id);
        if (text === null) throw new ServerError('NOT_FOUND', 'no such message', { status: 404 });
        return reply.type('message/rfc822').send(text);
      },
    );
  }
  return app;
}
