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
  /**
   * Charged once per `POST /destinations/confirm`, keyed by IP: it needs no session, so this is
   * what stands between it and guessing (on top of the 256-bit secret in each token).
   */
  confirmLimiter: RateLimiter;
}

const destinationSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    address: { type: 'string' },
    verified: { type: 'boolean' },
    verifiedAt: { type: ['integer', 'null'] },
    grandfathered: { type: 'boolean' },
    createdAt: { type: 'integer' },
  },
} as const;
const errors = { ...resourceErrors, 429: errorSchema } as const;

/** Adds `/destinations` routes: add (mails a token), verify (signed in) or confirm (token alone), list, delete. */
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
            'forwarded here until it is confirmed with this token (no account needed):\n\n' +
            `${added.token}\n\nopen ${deps.publicUrl}/destinations/confirm?token=${encodeURIComponent(added.token)}\n\n` +
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

  app.post(
    '/destinations/confirm',
    {
      schema: {
        tags: ['destinations'],
        summary:
          'Spend the token mailed to a destination, without a session: the mailbox owner may have no account',
        body: {
          type: 'object',
          required: ['token'],
          additionalProperties: false,
          properties: { token: { type: 'string', minLength: 1, maxLength: 512 } },
        },
        response: {
          200: {
            type: 'object',
            properties: { verified: { type: 'boolean' }, address: { type: 'string' } },
          },
          400: errorSchema,
          429: errorSchema,
        },
      },
    },
    async (request) => {
      await app.rateLimit(deps.confirmLimiter, `destination-confirm:${request.ip}`);
      const { destination, userId } = await deps.destinations.confirm(
        (request.body as { token: string }).token,
      );
      await audited(deps.audit, request, userId, 'destination.confirm', {
        destinationId: destination.id,
      });
      // Only what the token's holder knows already: not the account it belongs to.
      return { verified: true, address: destination.address };
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
