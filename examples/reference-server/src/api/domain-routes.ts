import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit.js';
import type { DnsResolver, DomainRepository } from '../domains.js';
import { errorSchema } from './app.js';

/** What the domain routes need. */
export interface DomainRouteDependencies {
  domains: DomainRepository;
  audit: AuditLog;
  /** DNS used to verify a custom domain (node:dns/promises in production). */
  dns: DnsResolver;
}

const domainSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    shared: { type: 'boolean' },
    verified: { type: 'boolean' },
    createdAt: { type: 'integer' },
  },
} as const;
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', format: 'uuid' } },
} as const;
const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema } as const;
const security = [{ bearer: [] }];

/** Adds `/domains` routes: add, list, DNS records to publish, verify, delete. */
export function registerDomainRoutes(app: FastifyInstance, deps: DomainRouteDependencies): void {
  app.post(
    '/domains',
    {
      schema: {
        tags: ['domains'],
        summary: 'Add a custom domain (a DKIM key is generated for it)',
        security,
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: { type: 'string', minLength: 3, maxLength: 253 } },
        },
        response: { 201: domainSchema, ...errors },
      },
    },
    async (request, reply) => {
      const principal = await app.requireUser(request);
      const domain = await deps.domains.add(
        principal.userId,
        (request.body as { name: string }).name,
      );
      await deps.audit.append({
        userId: principal.userId,
        action: 'domain.add',
        requestId: request.id,
        detail: { domainId: domain.id },
      });
      return reply.status(201).send(domain);
    },
  );

  app.get(
    '/domains',
    {
      schema: {
        tags: ['domains'],
        summary: 'Shared domains and yours',
        security,
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: domainSchema } } },
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      return { items: await deps.domains.list(principal.userId) };
    },
  );

  app.get(
    '/domains/:id/dns',
    {
      schema: {
        tags: ['domains'],
        summary: 'The DNS records to publish: MX, SPF, DKIM, DMARC, ownership',
        security,
        params: idParams,
        response: {
          200: {
            type: 'object',
            properties: {
              records: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    type: { type: 'string' },
                    name: { type: 'string' },
                    value: { type: 'string' },
                    priority: { type: 'integer' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      return {
        records: await deps.domains.dnsRecords(
          principal.userId,
          (request.params as { id: string }).id,
        ),
      };
    },
  );

  app.post(
    '/domains/:id/verify',
    {
      schema: {
        tags: ['domains'],
        summary: 'Look the records up in DNS and mark the domain verified when they are published',
        security,
        params: idParams,
        response: {
          200: {
            type: 'object',
            properties: {
              verified: { type: 'boolean' },
              checks: {
                type: 'object',
                properties: {
                  ownership: { type: 'boolean' },
                  mx: { type: 'boolean' },
                  dkim: { type: 'boolean' },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      const id = (request.params as { id: string }).id;
      const result = await deps.domains.verify(principal.userId, id, deps.dns);
      await deps.audit.append({
        userId: principal.userId,
        action: 'domain.verify',
        requestId: request.id,
        detail: { domainId: id, verified: result.verified },
      });
      return result;
    },
  );

  app.delete(
    '/domains/:id',
    {
      schema: {
        tags: ['domains'],
        summary: 'Delete a custom domain with its aliases',
        security,
        params: idParams,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      const principal = await app.requireUser(request);
      const id = (request.params as { id: string }).id;
      await deps.domains.delete(principal.userId, id);
      await deps.audit.append({
        userId: principal.userId,
        action: 'domain.delete',
        requestId: request.id,
        detail: { domainId: id },
      });
      return reply.status(204).send();
    },
  );
}
