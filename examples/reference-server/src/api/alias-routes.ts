import type { FastifyInstance } from 'fastify';
import type { AliasRepository } from '../aliases.js';
import type { AuditLog } from '../audit.js';
import type { AliasChangeNotifier, RateLimiter } from '../ports.js';
import { errorSchema } from './app.js';
import { audited, idOf, idParams, resourceErrors, security } from './route-kit.js';

/** What the alias routes need. */
export interface AliasRouteDependencies {
  aliases: AliasRepository;
  audit: AuditLog;
  notifier: AliasChangeNotifier;
  /** Charged once per alias creation, keyed by user. */
  createLimiter: RateLimiter;
}

const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const destinations = {
  type: 'array',
  items: email,
  minItems: 1,
  maxItems: 10,
  uniqueItems: true,
} as const;
const aliasSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    address: { type: 'string' },
    domainId: { type: 'string' },
    enabled: { type: 'boolean' },
    destinations: { type: 'array', items: { type: 'string' } },
    forwardedCount: { type: 'integer' },
    rejectedCount: { type: 'integer' },
    lastSeenAt: { type: ['integer', 'null'] },
    createdAt: { type: 'integer' },
  },
} as const;
const errors = { ...resourceErrors, 429: errorSchema } as const;

/** Adds `/aliases` routes: create, list (cursor), get, update (enable/disable, destinations), delete. */
export function registerAliasRoutes(app: FastifyInstance, deps: AliasRouteDependencies): void {
  app.post(
    '/aliases',
    {
      schema: {
        tags: ['aliases'],
        summary: 'Create an alias: a chosen or random local part on a verified domain',
        security,
        body: {
          type: 'object',
          required: ['domainId', 'destinations'],
          additionalProperties: false,
          properties: {
            domainId: { type: 'string', format: 'uuid' },
            localPart: { type: 'string', minLength: 1, maxLength: 64 },
            destinations,
          },
        },
        response: { 201: aliasSchema, ...errors },
      },
    },
    async (request, reply) => {
      const principal = await app.requireUser(request);
      await app.rateLimit(deps.createLimiter, `alias-create:${principal.userId}`);
      const body = request.body as { domainId: string; localPart?: string; destinations: string[] };
      const alias = await deps.aliases.create({ userId: principal.userId, ...body });
      // An SMTP process may hold "unknown" for this address from a probe before it existed.
      await deps.notifier.changed(alias.address);
      await audited(deps.audit, request, principal.userId, 'alias.create', { aliasId: alias.id });
      return reply.status(201).send(alias);
    },
  );

  app.get(
    '/aliases',
    {
      schema: {
        tags: ['aliases'],
        summary: 'List your aliases, oldest first, a page at a time',
        security,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
            cursor: { type: 'string', maxLength: 200 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              items: { type: 'array', items: aliasSchema },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      const query = request.query as { limit: number; cursor?: string };
      return deps.aliases.list(principal.userId, query);
    },
  );

  app.get(
    '/aliases/:id',
    {
      schema: {
        tags: ['aliases'],
        summary: 'One alias with its counters',
        security,
        params: idParams,
        response: { 200: aliasSchema, ...errors },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      return deps.aliases.get(principal.userId, idOf(request));
    },
  );

  app.patch(
    '/aliases/:id',
    {
      schema: {
        tags: ['aliases'],
        summary: 'Enable or disable an alias, or set its destinations',
        security,
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { enabled: { type: 'boolean' }, destinations },
        },
        response: { 200: aliasSchema, ...errors },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      const alias = await deps.aliases.update(
        principal.userId,
        idOf(request),
        request.body as { enabled?: boolean; destinations?: string[] },
      );
      await deps.notifier.changed(alias.address);
      await audited(deps.audit, request, principal.userId, 'alias.update', {
        aliasId: alias.id,
        enabled: alias.enabled,
      });
      return alias;
    },
  );

  app.delete(
    '/aliases/:id',
    {
      schema: {
        tags: ['aliases'],
        summary: 'Delete an alias and its log',
        security,
        params: idParams,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      const principal = await app.requireUser(request);
      const id = idOf(request);
      const address = await deps.aliases.delete(principal.userId, id);
      await deps.notifier.changed(address);
      await audited(deps.audit, request, principal.userId, 'alias.delete', { aliasId: id });
      return reply.status(204).send();
    },
  );
}
