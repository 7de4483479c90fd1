// Destination verification over a real socket: nobody makes the service forward (DKIM-signed) mail
// to a mailbox that did not confirm it, except the account's own address.
import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasRepository } from '../src/aliases.js';
import { get } from '../src/container.js';
import { DestinationRepository } from '../src/destinations.js';
import { ServerError } from '../src/errors.js';
import { startServer, verifiedDestination, sharedDomainId } from './support/http.js';
import type { Answer, Server } from './support/http.js';

const SUBJECT = 'Confirm forwarding to this address';
let server: Server;

beforeAll(async () => {
  server = await startServer('destinations', { LIMITS_DESTINATION_ADD_PER_HOUR: '5' });
});

afterAll(async () => {
  await server.close();
});

async function mailsTo(address: string): Promise<number> {
  const outbox = get(server.environment.container('api'), 'outbox');
  return (await outbox.list()).filter((entry) => entry.to.includes(address)).length;
}

function createAlias(
  auth: Record<string, string>,
  domainId: string,
  localPart: string,
  destinations: string[],
): Promise<Answer> {
  return server.call('POST', '/aliases', {
    headers: auth,
    body: { domainId, localPart, destinations },
  });
}

describe('destination verification', () => {
  it('adds a destination, mails it a token, refuses aliases to it until the token is spent, then allows them', async () => {
    const { auth } = await server.signUp('flow@example.org');
    const domainId = await sharedDomainId(server, auth);
    const added = await server.call('POST', '/destinations', {
      headers: auth,
      body: { address: 'Inbox@Dest.example' },
    });
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({
      address: 'inbox@dest.example',
      verified: false,
      verifiedAt: null,
    });
    expect(await mailsTo('inbox@dest.example')).toBe(1);
    expect(
      (await server.call('GET', '/destinations', { headers: auth })).json['items'],
    ).toMatchObject([{ id: added.json['id'], address: 'inbox@dest.example', verified: false }]);

    const refused = await createAlias(auth, domainId, 'flow', ['inbox@dest.example']);
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'destinations' });
    expect(refused.json['message']).toMatch(/inbox@dest\.example is not a verified destination/);

    const token = await server.latestToken('inbox@dest.example', SUBJECT);
    expect(token.startsWith(`${added.json['id'] as string}.`)).toBe(true);
    // Only a SHA-256 of the token is stored.
    const row = await server.environment.database.db
      .selectFrom('destinations')
      .selectAll()
      .where('id', '=', added.json['id'] as string)
      .executeTakeFirstOrThrow();
    expect(row.token_hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(token.split('.')[1]);

    const verified = await server.call('POST', '/destinations/verify', {
      headers: auth,
      body: { token },
    });
    expect(verified.status).toBe(200);
    expect(verified.json).toMatchObject({ id: added.json['id'], verified: true });
    expect(verified.json['verifiedAt']).toEqual(expect.any(Number));
    expect(
      (
        await server.environment.database.db
          .selectFrom('destinations')
          .select(['token_hash', 'token_expires_at'])
          .where('id', '=', added.json['id'] as string)
          .executeTakeFirstOrThrow()
      ).token_hash,
    ).toBeNull();

    // Upper case in the alias is the same mailbox.
    const alias = await createAlias(auth, domainId, 'flow', ['INBOX@dest.example']);
    expect(alias.status).toBe(201);
    expect(alias.json).toMatchObject({ destinations: ['inbox@dest.example'] });

    // Adding a verified destination again changes nothing and mails nobody.
    const again = await server.call('POST', '/destinations', {
      headers: auth,
      body: { address: 'inbox@dest.example' },
    });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ id: added.json['id'], verified: true });
    expect(await mailsTo('inbox@dest.example')).toBe(1);
  });

  it("counts the account's own address as verified, without a row", async () => {
    const { auth } = await server.signUp('self@example.org');
    const domainId = await sharedDomainId(server, auth);
    expect((await createAlias(auth, domainId, 'self', ['Self@Example.org'])).status).toBe(201);
    expect((await server.call('GET', '/destinations', { headers: auth })).json).toEqual({
      items: [],
    });
  });

  it('refuses an unverified destination when an alias is updated, and accepts a verified one', async () => {
    const { auth } = await server.signUp('update@example.org');
    const domainId = await sharedDomainId(server, auth);
    const alias = await createAlias(auth, domainId, 'update', ['update@example.org']);
    expect(alias.status).toBe(201);
    const id = alias.json['id'] as string;
    const patch = (destinations: string[]): Promise<Answer> =>
      server.call('PATCH', `/aliases/${id}`, { headers: auth, body: { destinations } });

    expect(
      (
        await server.call('POST', '/destinations', {
          headers: auth,
          body: { address: 'later@dest.example' },
        })
      ).status,
    ).toBe(201);
    const unverified = await patch(['update@example.org', 'later@dest.example']);
    expect(unverified.status).toBe(400);
    expect(unverified.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'destinations' });
    expect(unverified.json['message']).toMatch(/later@dest\.example is not a verified destination/);
    const never = await patch(['never@added.example']);
    expect(never.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'destinations' });
    // Nothing changed.
    expect((await server.call('GET', `/aliases/${id}`, { headers: auth })).json).toMatchObject({
      destinations: ['update@example.org'],
    });

    await verifiedDestination(server, auth, 'later@dest.example');
    const accepted = await patch(['update@example.org', 'later@dest.example']);
    expect(accepted.status).toBe(200);
    expect(accepted.json).toMatchObject({
      destinations: ['update@example.org', 'later@dest.example'],
    });
    // Enabling or disabling needs no destination check.
    expect(
      (await server.call('PATCH', `/aliases/${id}`, { headers: auth, body: { enabled: false } }))
        .json,
    ).toMatchObject({ enabled: false });
  });
});

describe('verification tokens', () => {
  it('are single-use, bound to their destination, expire, and are replaced when the address is added again', async () => {
    const { auth } = await server.signUp('tokens@example.org');
    const verify = (token: string): Promise<Answer> =>
      server.call('POST', '/destinations/verify', { headers: auth, body: { token } });
    const add = (address: string): Promise<Answer> =>
      server.call('POST', '/destinations', { headers: auth, body: { address } });

    // Bound to the destination: one destination's id with another's secret is refused.
    const first = await add('first@dest.example');
    const second = await add('second@dest.example');
    const firstToken = await server.latestToken('first@dest.example', SUBJECT);
    const secondToken = await server.latestToken('second@dest.example', SUBJECT);
    const crossed = `${first.json['id'] as string}.${secondToken.split('.')[1]!}`;
    const wrong = await verify(crossed);
    expect(wrong.status).toBe(400);
    expect(wrong.json).toMatchObject({ code: 'TOKEN_INVALID', field: 'token' });
    // Malformed tokens are refused the same way, never with a 500 from PostgreSQL.
    for (const malformed of [
      'nonsense',
      `${'-'.repeat(36)}.${secondToken.split('.')[1]!}`,
      `${first.json['id'] as string}.short`,
    ]) {
      expect((await verify(malformed)).json).toMatchObject({ code: 'TOKEN_INVALID' });
    }

    // Single use.
    expect((await verify(firstToken)).json).toMatchObject({ verified: true });
    const reused = await verify(firstToken);
    expect(reused.status).toBe(400);
    expect(reused.json).toMatchObject({ code: 'TOKEN_INVALID' });

    // Expired: past its lifetime the right token is refused with TOKEN_EXPIRED.
    await server.environment.database.db
      .updateTable('destinations')
      .set({ token_expires_at: Date.now() - 1 })
      .where('id', '=', second.json['id'] as string)
      .execute();
    const expired = await verify(secondToken);
    expect(expired.status).toBe(400);
    expect(expired.json).toMatchObject({ code: 'TOKEN_EXPIRED', field: 'token' });
    expect(
      (await server.call('GET', '/destinations', { headers: auth })).json['items'],
    ).toMatchObject([
      { address: 'first@dest.example', verified: true },
      { address: 'second@dest.example', verified: false },
    ]);

    // Adding it again mails a new token (same destination, 200) and the old one stops working.
    const resent = await add('second@dest.example');
    expect(resent.status).toBe(200);
    expect(resent.json).toMatchObject({ id: second.json['id'], verified: false });
    const newToken = await server.latestToken('second@dest.example', SUBJECT);
    expect(newToken).not.toBe(secondToken);
    expect((await verify(secondToken)).json).toMatchObject({ code: 'TOKEN_INVALID' });
    expect((await verify(newToken)).json).toMatchObject({ verified: true });
  });
});

describe('destinations between users', () => {
  it('gives one user no way to see, verify, delete or forward to another’s destination', async () => {
    const owner = await server.signUp('dest-owner@example.org');
    const intruder = await server.signUp('dest-intruder@example.org');
    const domainId = await sharedDomainId(server, intruder.auth);
    const verifiedId = await verifiedDestination(server, owner.auth, 'owned@dest.example');
    const pending = await server.call('POST', '/destinations', {
      headers: owner.auth,
      body: { address: 'pending@dest.example' },
    });
    const pendingToken = await server.latestToken('pending@dest.example', SUBJECT);
    const as = { headers: intruder.auth };

    expect((await server.call('GET', '/destinations', as)).json).toEqual({ items: [] });
    // The owner's token, presented by someone else, verifies nothing.
    const stolen = await server.call('POST', '/destinations/verify', {
      ...as,
      body: { token: pendingToken },
    });
    expect(stolen.json).toMatchObject({ code: 'TOKEN_INVALID' });
    expect((await server.call('DELETE', `/destinations/${verifiedId}`, as)).status).toBe(404);
    expect(
      (await server.call('DELETE', `/destinations/${pending.json['id'] as string}`, as)).status,
    ).toBe(404);
    // The owner's verified destination is not the intruder's to forward to.
    const forwarded = await createAlias(intruder.auth, domainId, 'grab', ['owned@dest.example']);
    expect(forwarded.status).toBe(400);
    expect(forwarded.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'destinations' });
    // Nor is the owner's account address.
    expect(
      (await createAlias(intruder.auth, domainId, 'grab', ['dest-owner@example.org'])).json,
    ).toMatchObject({ code: 'VALIDATION_FAILED', field: 'destinations' });
    // Adding the same address gives the intruder a row of their own, unverified.
    const theirs = await server.call('POST', '/destinations', {
      ...as,
      body: { address: 'owned@dest.example' },
    });
    expect(theirs.status).toBe(201);
    expect(theirs.json).toMatchObject({ verified: false });
    expect(theirs.json['id']).not.toBe(verifiedId);

    // Everything of the owner is intact.
    expect(
      (await server.call('GET', '/destinations', { headers: owner.auth })).json['items'],
    ).toMatchObject([
      { id: verifiedId, verified: true },
      { id: pending.json['id'], verified: false },
    ]);
    expect(
      (
        await server.call('POST', '/destinations/verify', {
          headers: owner.auth,
          body: { token: pendingToken },
        })
      ).json,
    ).toMatchObject({ verified: true });
  });
});

describe('deleting a destination', () => {
  it('is refused while an alias forwards to it, and allowed once none does', async () => {
    const { auth } = await server.signUp('deleter@example.org');
    const domainId = await sharedDomainId(server, auth);
    const id = await verifiedDestination(server, auth, 'used@dest.example');
    const alias = await createAlias(auth, domainId, 'deleter', ['used@dest.example']);
    expect(alias.status).toBe(201);

    const refused = await server.call('DELETE', `/destinations/${id}`, { headers: auth });
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'CONFLICT' });
    expect(
      (await server.call('GET', '/destinations', { headers: auth })).json['items'],
    ).toMatchObject([{ id }]);

    expect(
      (
        await server.call('PATCH', `/aliases/${alias.json['id'] as string}`, {
          headers: auth,
          body: { destinations: ['deleter@example.org'] },
        })
      ).status,
    ).toBe(200);
    expect((await server.call('DELETE', `/destinations/${id}`, { headers: auth })).status).toBe(
      204,
    );
    expect((await server.call('GET', '/destinations', { headers: auth })).json).toEqual({
      items: [],
    });
    expect((await server.call('DELETE', `/destinations/${id}`, { headers: auth })).status).toBe(
      404,
    );
    // Gone means unverified again.
    expect(
      (
        await server.call('PATCH', `/aliases/${alias.json['id'] as string}`, {
          headers: auth,
          body: { destinations: ['used@dest.example'] },
        })
      ).json,
    ).toMatchObject({ code: 'VALIDATION_FAILED', field: 'destinations' });
  });
});

describe('rate limit', () => {
  it('limits destinations added (and re-sent) per user: LIMITS_DESTINATION_ADD_PER_HOUR', async () => {
    const { auth } = await server.signUp('spammer@example.org');
    const statuses: number[] = [];
    let limited: Answer | undefined;
    for (let index = 0; index < 7; index += 1) {
      // Re-sending to one address costs as much as adding a new one.
      const address = index % 2 === 0 ? 'victim@dest.example' : `victim${index}@dest.example`;
      const answer = await server.call('POST', '/destinations', {
        headers: auth,
        body: { address },
      });
      statuses.push(answer.status);
      if (answer.status === 429) limited ??= answer;
    }
    expect(statuses).toEqual([201, 201, 200, 201, 200, 429, 429]);
    expect(limited?.json).toMatchObject({ code: 'RATE_LIMITED' });
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await mailsTo('victim@dest.example')).toBe(3);
    // Another user has a budget of their own.
    const other = await server.signUp('not-a-spammer@example.org');
    expect(
      (
        await server.call('POST', '/destinations', {
          headers: other.auth,
          body: { address: 'victim@dest.example' },
        })
      ).status,
    ).toBe(201);
  });
});

describe('input', () => {
  it('validates the address as alias destinations are validated, and needs a session', async () => {
    const { auth } = await server.signUp('input@example.org');
    const bad = await server.call('POST', '/destinations', {
      headers: auth,
      body: { address: 'not an email' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body.address' });
    for (const [method, path, body] of [
      ['GET', '/destinations', undefined],
      ['POST', '/destinations', { address: 'x@dest.example' }],
      ['POST', '/destinations/verify', { token: 'x' }],
      ['DELETE', '/destinations/00000000-0000-4000-8000-000000000000', undefined],
    ] as const) {
      expect((await server.call(method, path, { body })).status).toBe(401);
    }
  });
});

describe('confirming without an account', () => {
  it("lets the destination's owner confirm with the mailed token alone, once, before it expires", async () => {
    const { auth } = await server.signUp('partner-owner@example.org');
    const domainId = await sharedDomainId(server, auth);
    const added = await server.call('POST', '/destinations', {
      headers: auth,
      body: { address: 'partner@dest.example' },
    });
    expect(added.status).toBe(201);
    const token = await server.latestToken('partner@dest.example', SUBJECT);
    // The mail tells its reader that no account is needed, and where to confirm.
    const outbox = get(server.environment.container('api'), 'outbox');
    const entry = (await outbox.list()).find((mail) => mail.to.includes('partner@dest.example'))!;
    const text = (await outbox.read(entry.id)) ?? '';
    expect(text).toContain('/destinations/confirm?token=');
    expect(text).not.toContain('signed in');

    // No Authorization header: the partner has no account here.
    const confirmed = await server.call('POST', '/destinations/confirm', { body: { token } });
    expect(confirmed.status).toBe(200);
    expect(confirmed.json).toEqual({ verified: true, address: 'partner@dest.example' });
    expect(
      (await server.call('GET', '/destinations', { headers: auth })).json['items'],
    ).toMatchObject([{ id: added.json['id'], verified: true }]);
    expect((await createAlias(auth, domainId, 'partner', ['partner@dest.example'])).status).toBe(
      201,
    );

    // Single use, on either path.
    const again = await server.call('POST', '/destinations/confirm', { body: { token } });
    expect(again.status).toBe(400);
    expect(again.json).toMatchObject({ code: 'TOKEN_INVALID', field: 'token' });
    expect(
      (await server.call('POST', '/destinations/verify', { headers: auth, body: { token } })).json,
    ).toMatchObject({ code: 'TOKEN_INVALID' });

    // Malformed and forged tokens are refused the same way.
    for (const malformed of [
      'nonsense',
      `${added.json['id'] as string}.short`,
      `${randomUUID()}.${token.split('.')[1]!}`,
    ]) {
      const answer = await server.call('POST', '/destinations/confirm', {
        body: { token: malformed },
      });
      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({ code: 'TOKEN_INVALID' });
    }

    // Expired.
    const late = await server.call('POST', '/destinations', {
      headers: auth,
      body: { address: 'late-partner@dest.example' },
    });
    const lateToken = await server.latestToken('late-partner@dest.example', SUBJECT);
    await server.environment.database.db
      .updateTable('destinations')
      .set({ token_expires_at: Date.now() - 1 })
      .where('id', '=', late.json['id'] as string)
      .execute();
    const expired = await server.call('POST', '/destinations/confirm', {
      body: { token: lateToken },
    });
    expect(expired.status).toBe(400);
    expect(expired.json).toMatchObject({ code: 'TOKEN_EXPIRED', field: 'token' });

    // The owner's audit log records who confirmed: nobody signed in.
    const audit = await server.environment.database.db
      .selectFrom('audit_log')
      .select(['action', 'detail'])
      .where('action', '=', 'destination.confirm')
      .execute();
    expect(audit).toEqual([
      { action: 'destination.confirm', detail: { destinationId: added.json['id'] } },
    ]);
  });

  it('is rate limited per IP: LIMITS_DESTINATION_CONFIRM_PER_HOUR', async () => {
    const limited = await startServer('dest_confirm', {
      LIMITS_DESTINATION_CONFIRM_PER_HOUR: '3',
    });
    try {
      const statuses: number[] = [];
      let answer: Answer | undefined;
      for (let index = 0; index < 5; index += 1) {
        answer = await limited.call('POST', '/destinations/confirm', {
          body: { token: `${randomUUID()}.${'A'.repeat(43)}` },
        });
        statuses.push(answer.status);
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      expect(answer?.json).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(answer?.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });
});

describe('deleting a destination while an alias is created', () => {
  it('never leaves an alias forwarding to a deleted destination, over many concurrent attempts', async () => {
    const { db } = server.environment.database;
    const { auth } = await server.signUp('racer@example.org');
    const domainId = await sharedDomainId(server, auth);
    const user = await db
      .selectFrom('users')
      .select('id')
      .where('email', '=', 'racer@example.org')
      .executeTakeFirstOrThrow();
    const destinations = new DestinationRepository(db);
    // Widens the window between the check and the insert, as a slow link to the database would.
    const aliases = new AliasRepository(db, {
      destinations: {
        async assertUsable(...args) {
          await destinations.assertUsable(...args);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
        },
      },
    });
    const attempts = 120;
    const addresses = Array.from({ length: attempts }, (_, index) => `race${index}@dest.example`);
    const ids = addresses.map(() => randomUUID());
    await db
      .insertInto('destinations')
      .values(
        addresses.map((address, index) => ({
          id: ids[index]!,
          user_id: user.id,
          address,
          verified_at: Date.now(),
          token_hash: null,
          token_expires_at: null,
          created_at: Date.now(),
        })),
      )
      .execute();

    const expected = (error: unknown): string => {
      if (ServerError.isInstance(error)) return error.code;
      throw error;
    };
    const attempt = async (index: number): Promise<[string, string]> => {
      const address = addresses[index]!;
      const create = aliases
        .create({ userId: user.id, domainId, localPart: `race${index}`, destinations: [address] })
        .then(() => 'created', expected);
      // Started a little later, so it often lands between the alias's check and its insert.
      const remove = new Promise((resolve) => setTimeout(resolve, Math.random() * 4))
        .then(() => destinations.delete(user.id, ids[index]!))
        .then(() => 'deleted', expected);
      return Promise.all([create, remove]);
    };
    // A few pairs at a time, so neither side waits in the connection pool behind the other.
    const outcomes: [string, string][] = [];
    for (let start = 0; start < attempts; start += 4) {
      const batch = [0, 1, 2, 3].map((offset) => start + offset).filter((i) => i < attempts);
      outcomes.push(...(await Promise.all(batch.map(attempt))));
    }
    // Exactly one of the two wins each time.
    for (const [created, deleted] of outcomes) {
      expect(created === 'created').toBe(deleted !== 'deleted');
    }

    // Every alias forwards to a destination that still exists, verified.
    const orphans = await db
      .selectFrom('aliases')
      .select(['aliases.address', 'aliases.destinations'])
      .where('aliases.user_id', '=', user.id)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('destinations')
              .select('destinations.id')
              .whereRef('destinations.user_id', '=', 'aliases.user_id')
              .where('destinations.verified_at', 'is not', null)
              .where(sql<boolean>`destinations.address = ANY(aliases.destinations)`),
          ),
        ),
      )
      .execute();
    expect(orphans).toEqual([]);
  });
});
