import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit.js';
import type { DnsResolver, DomainRepository } from '../domains.js';
import type { DomainChangeNotifier, RateLimiter } from '../ports.js';
import { errorSchema } from './app.js';
import { audited, idOf, idParams, resourceErrors, security } from './route-kit.js';

/** What the domain routes need. */
export interface DomainRouteDependencies {
  domains: DomainRepository;
  audit: AuditLog;
  /** DNS used to verify a custom domain (node:dns/promises in production). */
  dns: DnsResolver;
  /** Told of every added or deleted domain, so SMTP processes drop its cached DKIM key. */
  notifier: DomainChangeNotifier;
  /**
   * Charged once per domain added (an RSA key generation) and per verification (DNS lookups),
   * keyed by user: deleting and adding a domain again must not be a free loop of key generations.
   */
  changeLimiter: RateLimiter;
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
const errors = { ...resourceErrors, 429: errorSchema } as const;

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
      await app.rateLimit(deps.changeLimiter, `domain-change:${principal.userId}`);
      const domain = await deps.domains.add(
        principal.userId,
        (request.body as { name: string }).name,
      );
      // An SMTP process may hold "no key" for this name from before it was added.
      await deps.notifier.changed(domain.name);
      await audited(deps.audit, request, principal.userId, 'domain.add', { domainId: domain.id });
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
        records: await deps.domains.dnsRecords(principal.userId, idOf(request)),
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
      await app.rateLimit(deps.changeLimiter, `domain-change:${principal.userId}`);
      const id = idOf(request);
      const result = await deps.domains.verify(principal.userId, id, deps.dns);
      await audited(deps.audit, request, principal.userId, 'domain.verify', {
        domainId: id,
        verified: result.verified,
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
      const id = idOf(request);
      await deps.notifier.changed(await deps.domains.delete(principal.userId, id));
      await audited(deps.audit, request, principal.userId, 'domain.delete', { domainId: id });
      return reply.status(204).send();
    },
  );
}
