import type { FastifyRequest } from 'fastify';
import type { AuditEntry, AuditLog } from '../audit.js';
import { errorSchema } from './app.js';

/** Path parameters of every `/<things>/:id` route. */
export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', format: 'uuid' } },
} as const;

/** OpenAPI security of the routes behind a bearer access token. */
export const security = [{ bearer: [] }];

/** Error answers of the owner-scoped resource routes (aliases, domains). */
export const resourceErrors = {
  400: errorSchema,
  401: errorSchema,
  404: errorSchema,
  409: errorSchema,
} as const;

/** The `:id` path parameter, validated by `idParams`. */
export function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

/** Appends one audit row for `userId`, carrying the request id. */
export function audited(
  audit: AuditLog,
  request: FastifyRequest,
  userId: string,
  action: string,
  detail: NonNullable<AuditEntry['detail']>,
): Promise<void> {
  return audit.append({ userId, action, requestId: request.id, detail });
}
