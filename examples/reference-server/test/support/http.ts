import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import { get } from '../../src/container.js';
import { createTestEnvironment } from './server.js';
import type { TestEnvironment } from './server.js';

export const PASSWORD = 'correct horse battery staple 42';

/** An account or destination token in a system mail: `<uuid>.<43 base64url characters>`. */
const MAILED_TOKEN = /\n([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})\r?\n/;

export interface Answer {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

/** A running API on a real port, and helpers that talk to it over HTTP. */
export interface Server {
  environment: TestEnvironment;
  app: FastifyInstance;
  call(
    method: string,
    path: string,
    options?: { body?: unknown; headers?: Record<string, string> },
  ): Promise<Answer>;
  /** The token in the newest system mail to `to` (whose subject contains `subject`, if given). */
  latestToken(to: string, subject?: string): Promise<string>;
  /** Registers, verifies through the mailed token and logs in. */
  signUp(
    email: string,
  ): Promise<{ accessToken: string; refreshToken: string; auth: Record<string, string> }>;
  close(): Promise<void>;
}

/** Starts the API of a fresh test environment on a free port, with the shared domain `alias.test`. */
export async function startServer(
  name: string,
  env: Record<string, string> = {},
  overrides: (
    environment: TestEnvironment,
  ) => Parameters<TestEnvironment['container']>[1] = () => ({}),
): Promise<Server> {
  const environment = await createTestEnvironment(name, {
    LIMITS_REGISTER_PER_HOUR: '100',
    LIMITS_RESET_PER_HOUR: '100',
    // Every test signs a user up from this one address; the proxy test sets its own limit.
    LIMITS_LOGIN_PER_MINUTE: '100',
    ...env,
  });
  const container = environment.container('api', overrides(environment));
  await get(container, 'domains').ensureShared('alias.test');
  const app = await createApiServer(container);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  const outbox = get(container, 'outbox');

  const call: Server['call'] = async (method, path, options = {}) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    let json: Record<string, unknown> = {};
    if (text !== '') json = JSON.parse(text) as Record<string, unknown>;
    return { status: response.status, json, headers: response.headers };
  };
  const latestToken: Server['latestToken'] = async (to, subject) => {
    for (const entry of await outbox.list()) {
      if (!entry.to.includes(to)) continue;
      const text = (await outbox.read(entry.id)) ?? '';
      if (subject !== undefined && !text.includes(`Subject: ${subject}`)) continue;
      const match = MAILED_TOKEN.exec(text);
      if (match?.[1] !== undefined) return match[1];
    }
    throw new Error(`no token mailed to ${to}`);
  };
  return {
    environment,
    app,
    call,
    latestToken,
    async signUp(email) {
      expect(
        (await call('POST', '/auth/register', { body: { email, password: PASSWORD } })).status,
      ).toBe(202);
      expect(
        (await call('POST', '/auth/verify', { body: { token: await latestToken(email) } })).json,
      ).toEqual({ verified: true });
      const login = await call('POST', '/auth/login', { body: { email, password: PASSWORD } });
      expect(login.status).toBe(200);
      const pair = login.json as { accessToken: string; refreshToken: string };
      return { ...pair, auth: { authorization: `Bearer ${pair.accessToken}` } };
    },
    async close() {
      await app.close();
      await environment.close();
    },
  };
}

/**
 * Adds `address` as a destination of the user behind `auth` and spends the token mailed to it, as
 * the owner of that mailbox would; returns the destination's id.
 */
export async function verifiedDestination(
  server: Server,
  auth: Record<string, string>,
  address: string,
): Promise<string> {
  const added = await server.call('POST', '/destinations', { headers: auth, body: { address } });
  expect([200, 201]).toContain(added.status);
  const token = await server.latestToken(address, 'Confirm forwarding to this address');
  const verified = await server.call('POST', '/destinations/verify', {
    headers: auth,
    body: { token },
  });
  expect(verified.json).toMatchObject({ address: address.toLowerCase(), verified: true });
  return verified.json['id'] as string;
}

/** The id of the shared domain (alias.test) as the user behind `auth` sees it. */
export async function sharedDomainId(
  server: Server,
  auth: Record<string, string>,
): Promise<string> {
  const { items } = (await server.call('GET', '/domains', { headers: auth })).json as {
    items: { id: string; name: string }[];
  };
  return items.find((domain) => domain.name === 'alias.test')!.id;
}
