import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit.js';
import type { DestinationRepository } from '../destinations.js';
import type { Mailer } from '../mailer.js';
import type { RateLimiter } from '../ports.js';
import { errorSchema } from './app.js';
import { audited, idOf, idParams, resourceErrors, security } from './route-kit.js';

/** What the destination routes need. */
export interface DestinationRouteDependencies {
  destinations: DestinationRepository;
  audit: AuditLog;
  /** Sends the verification token to the destination (the mailer of the account routes). */
  mailer: Mailer;
  /** Public base URL, used in the link of the verification mail. */
  publicUrl: string;
  /**
   * Charged once per `POST /destinations`, keyed by user: each one mails someone who may never
   * have heard of us, so re-sending must not be a free loop either.
   */
  addLimiter: RateLimiter;
}

const destinationSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    address: { type: 'string' },
    verified: { type: 'boolean' },
    verifiedAt: { type: ['integer', 'null'] },
    createdAt: { type: 'integer' },
  },
} as const;
const errors = { ...resourceErrors, 429: errorSchema } as const;

/** Adds `/destinations` routes: add (mails a token), verify, list, delete. */
export function registerDestinationRoutes(
  app: FastifyInstance,
  deps: DestinationRouteDependencies,
): void {
  app.post(
    '/destinations',
    {
      schema: {
        tags: ['destinations'],
        summary:
          'Add a mailbox to forward to: a verification token is mailed to it (again, if it is added again)',
        security,
        body: {
          type: 'object',
          required: ['address'],
          additionalProperties: false,
          properties: { address: { type: 'string', format: 'email', maxLength: 254 } },
        },
        response: { 200: destinationSchema, 201: destinationSchema, ...errors },
      },
    },
    async (request, reply) => {
      const principal = await app.requireUser(request);
      await app.rateLimit(deps.addLimiter, `destination-add:${principal.userId}`);
      const { address } = request.body as { address: string };
      const added = await deps.destinations.add(principal.userId, address);
      if (added.token !== null) {
        await deps.mailer.send({
          to: added.destination.address,
          subject: 'Confirm forwarding to this address',
          text:
            'A Postern user asked to forward mail from their aliases to this address. Nothing is ' +
            'forwarded here until they confirm, signed in, with this token:\n\n' +
            `${added.token}\n\nor open ${deps.publicUrl}/destinations/verify?token=${encodeURIComponent(added.token)}\n\n` +
            'It works once, for 24 hours. If you did not expect this, ignore this mail.\n',
        });
      }
      await audited(deps.audit, request, principal.userId, 'destination.add', {
        destinationId: added.destination.id,
        created: added.created,
        mailed: added.token !== null,
      });
      return reply.status(added.created ? 201 : 200).send(added.destination);
    },
  );

  app.post(
    '/destinations/verify',
    {
      schema: {
        tags: ['destinations'],
        summary: 'Spend the token mailed to one of your destinations and mark it verified',
        security,
        body: {
          type: 'object',
          required: ['token'],
          additionalProperties: false,
          properties: { token: { type: 'string', minLength: 1, maxLength: 512 } },
        },
        response: { 200: destinationSchema, ...errors },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      const destination = await deps.destinations.verify(
        principal.userId,
        (request.body as { token: string }).token,
      );
      await audited(deps.audit, request, principal.userId, 'destination.verify', {
        destinationId: destination.id,
      });
      return destination;
    },
  );

  app.get(
    '/destinations',
    {
      schema: {
        tags: ['destinations'],
        summary:
          'Your destinations, oldest first (your account address is always usable and not listed)',
        security,
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: destinationSchema } },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      return { items: await deps.destinations.list(principal.userId) };
    },
  );

  app.delete(
    '/destinations/:id',
    {
      schema: {
        tags: ['destinations'],
        summary: 'Delete a destination no alias of yours forwards to',
        security,
        params: idParams,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      const principal = await app.requireUser(request);
      const id = idOf(request);
      await deps.destinations.delete(principal.userId, id);
      await audited(deps.audit, request, principal.userId, 'destination.delete', {
        destinationId: id,
      });
      return reply.status(204).send();
    },
  );
}
