// The HTTP API against an attacker: every request here goes over a real socket to a listening
// server, as an attacker's would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer } from '../src/api/server.js';
import { get } from '../src/container.js';
import { DomainRepository } from '../src/domains.js';
import type { DkimKey, DnsResolver } from '../src/domains.js';
import { PASSWORD, startServer, sharedDomainId } from './support/http.js';
import type { Answer, Server } from './support/http.js';

const zone = new Map<string, string[][]>();
const dns: DnsResolver = {
  resolveTxt: (name) =>
    zone.has(name) ? Promise.resolve(zone.get(name)!) : Promise.reject(new Error('ENOTFOUND')),
  resolveMx: () => Promise.resolve([{ exchange: 'mx.alias.test', priority: 10 }]),
};
const FAKE_KEY: DkimKey = { privateKeyPem: 'unused', publicKeyBase64: 'QUJD' };

let server: Server;
let keysGenerated = 0;

beforeAll(async () => {
  server = await startServer('api_security', {}, (environment) => ({
    dns,
    // Counts DKIM key generations: each one is ~100 ms of RSA work on the libuv thread pool.
    domains: new DomainRepository(environment.database.db, {
      mxHost: 'mx.alias.test',
      generateDkimKey: () => {
        keysGenerated += 1;
        return Promise.resolve(FAKE_KEY);
      },
    }),
  }));
});

afterAll(async () => {
  await server.close();
});

async function verifiedDomain(auth: Record<string, string>, name: string): Promise<string> {
  const created = await server.call('POST', '/domains', { headers: auth, body: { name } });
  expect(created.status).toBe(201);
  const id = created.json['id'] as string;
  const { records } = (await server.call('GET', `/domains/${id}/dns`, { headers: auth })).json as {
    records: { type: string; name: string; value: string }[];
  };
  for (const record of records) if (record.type === 'TXT') zone.set(record.name, [[record.value]]);
  expect(
    (await server.call('POST', `/domains/${id}/verify`, { headers: auth })).json,
  ).toMatchObject({ verified: true });
  return id;
}

describe('aliases on the shared domain', () => {
  it('refuses reserved role addresses (postmaster, abuse, MAILER-DAEMON, no-reply, CA validation addresses) in any case', async () => {
    const { auth } = await signUp('reserved@example.org');
    const domainId = await sharedDomainId(server, auth);
    for (const localPart of [
      'postmaster',
      'abuse',
      'MAILER-DAEMON',
      'no-reply',
      'noreply',
      'hostmaster',
      'webmaster',
      'admin',
      'administrator',
      'root',
      'security',
      'PostMaster',
    ]) {
      const answer = await server.call('POST', '/aliases', {
        headers: auth,
        body: { domainId, localPart, destinations: ['reserved@example.org'] },
      });
      expect({ localPart, status: answer.status }).toEqual({ localPart, status: 409 });
      expect(answer.json).toMatchObject({ code: 'ALIAS_TAKEN', field: 'localPart' });
    }
    const { items } = (await server.call('GET', '/aliases', { headers: auth })).json as {
      items: unknown[];
    };
    expect(items).toEqual([]);
  });

  it('refuses local parts the SMTP side can never route to an alias (SRS prefixes, empty dot-atoms)', async () => {
    const { auth } = await signUp('unroutable@example.org');
    const domainId = await sharedDomainId(server, auth);
    for (const localPart of ['srs0-abc', 'SRS1+x', 'a..b']) {
      const answer = await server.call('POST', '/aliases', {
        headers: auth,
        body: { domainId, localPart, destinations: ['unroutable@example.org'] },
      });
      expect({ localPart, status: answer.status }).toEqual({ localPart, status: 400 });
      expect(answer.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'localPart' });
    }
  });

  it('lets the owner of a verified custom domain have postmaster@ and abuse@ on it', async () => {
    const { auth } = await signUp('roles@example.org');
    const domainId = await verifiedDomain(auth, 'roles.example');
    for (const localPart of ['postmaster', 'abuse']) {
      expect(
        (
          await server.call('POST', '/aliases', {
            headers: auth,
            body: { domainId, localPart, destinations: ['roles@example.org'] },
          })
        ).status,
      ).toBe(201);
    }
  });
});

describe('authorization between users', () => {
  it("gives one user no way to read, change or delete another's aliases, domains or sessions", async () => {
    const owner = await signUp('owner@example.org');
    const intruder = await signUp('intruder@example.org');
    const domainId = await verifiedDomain(owner.auth, 'owned.example');
    const alias = (
      await server.call('POST', '/aliases', {
        headers: owner.auth,
        body: { domainId, localPart: 'mine', destinations: ['owner@example.org'] },
      })
    ).json as { id: string };
    const pending = (
      await server.call('POST', '/domains', {
        headers: owner.auth,
        body: { name: 'pending.example' },
      })
    ).json as { id: string };
    const as = { headers: intruder.auth };
    expect((await server.call('GET', `/aliases/${alias.id}`, as)).status).toBe(404);
    expect(
      (
        await server.call('PATCH', `/aliases/${alias.id}`, {
          ...as,
          body: { destinations: ['x@evil.example'] },
        })
      ).status,
    ).toBe(404);
    expect((await server.call('DELETE', `/aliases/${alias.id}`, as)).status).toBe(404);
    expect((await server.call('GET', `/domains/${domainId}/dns`, as)).status).toBe(404);
    expect((await server.call('POST', `/domains/${pending.id}/verify`, as)).status).toBe(404);
    expect((await server.call('DELETE', `/domains/${domainId}`, as)).status).toBe(404);
    expect(
      (
        await server.call('POST', '/aliases', {
          ...as,
          body: { domainId, localPart: 'theirs', destinations: ['x@evil.example'] },
        })
      ).status,
    ).toBe(404);
    const listed = (await server.call('GET', '/domains', as)).json as { items: { id: string }[] };
    expect(listed.items.map((domain) => domain.id)).not.toContain(domainId);
    const sessions = (await server.call('GET', '/auth/sessions', { headers: owner.auth })).json as {
      items: { id: string }[];
    };
    expect(
      (await server.call('DELETE', `/auth/sessions/${sessions.items[0]!.id}`, as)).status,
    ).toBe(404);
    // Everything of the owner is intact.
    expect(
      (await server.call('GET', `/aliases/${alias.id}`, { headers: owner.auth })).json,
    ).toMatchObject({ destinations: ['owner@example.org'], enabled: true });
    expect((await server.call('GET', '/auth/sessions', { headers: owner.auth })).status).toBe(200);
  });
});

describe('input the API did not issue', () => {
  it('answers a forged alias cursor with 400, never a 500 from PostgreSQL', async () => {
    const { auth } = await signUp('cursor@example.org');
    for (const id of [
      '-'.repeat(36),
      'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaaa'.slice(0, 36).replace(/-/g, 'a'),
    ]) {
      const cursor = Buffer.from(`${Date.now()}:${id}`).toString('base64url');
      const answer = await server.call('GET', `/aliases?cursor=${cursor}`, { headers: auth });
      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'cursor' });
      expect(JSON.stringify(answer.json)).not.toMatch(/uuid|syntax|select/i);
    }
  });
});

describe('custom domains', () => {
  it('spends no DKIM key generation on a name that is taken, and caps unverified domains per user', async () => {
    const first = await signUp('claims@example.org');
    const second = await signUp('claims2@example.org');
    await verifiedDomain(first.auth, 'claimed.example');
    const before = keysGenerated;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const answer = await server.call('POST', '/domains', {
        headers: second.auth,
        body: { name: 'CLAIMED.example.' },
      });
      expect(answer.json).toMatchObject({ code: 'DOMAIN_TAKEN' });
    }
    expect(keysGenerated).toBe(before);
    // Unverified names cost a key each and need no DNS: one account cannot pile them up.
    let refused: Answer | undefined;
    for (let index = 0; index < 30 && refused === undefined; index += 1) {
      const answer = await server.call('POST', '/domains', {
        headers: second.auth,
        body: { name: `pile${index}.example` },
      });
      if (answer.status !== 201) refused = answer;
    }
    expect(refused?.status).toBe(409);
    expect(refused?.json).toMatchObject({ code: 'CONFLICT', field: 'name' });
  });
});

describe('readiness', () => {
  it('names a failed dependency but not why it failed (internal hosts and ports stay in the log)', async () => {
    const app = await createApiServer(server.environment.container('api', { dns }), {
      readiness: {
        smtp: () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.5:2525')),
      },
    });
    try {
      const ready = await app.inject({ method: 'GET', url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({
        ok: false,
        checks: { smtp: { ok: false, error: 'unavailable' }, postgres: { ok: true } },
      });
      expect(ready.body).not.toContain('10.0.0.5');
      expect(ready.body).not.toContain('ECONNREFUSED');
    } finally {
      await app.close();
    }
  });
});

describe('custom domains: the cost of adding one', () => {
  it('limits domain additions per user, so deleting and adding again is no free loop of RSA key generations', async () => {
    const { auth } = await signUp('looper@example.org');
    const before = keysGenerated;
    let limited: Answer | undefined;
    for (let round = 0; round < 30 && limited === undefined; round += 1) {
      const added = await server.call('POST', '/domains', {
        headers: auth,
        body: { name: 'loop.example' },
      });
      if (added.status === 429) limited = added;
      else
        expect(
          (
            await server.call('DELETE', `/domains/${added.json['id'] as string}`, {
              headers: auth,
            })
          ).status,
        ).toBe(204);
    }
    expect(limited?.json).toMatchObject({ code: 'RATE_LIMITED' });
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
    // LIMITS_DOMAIN_CHANGE_PER_HOUR (20): no more keys than that.
    expect(keysGenerated - before).toBe(20);
  });
});

describe('custom domains: claims', () => {
  it('lets no unverified claim lock the owner out: whoever proves the name in DNS gets it, and the other claims go', async () => {
    const squatter = await signUp('claim-squatter@example.org');
    const owner = await signUp('domain-owner@example.org');
    const squatted = await server.call('POST', '/domains', {
      headers: squatter.auth,
      body: { name: 'victim.example' },
    });
    expect(squatted.status).toBe(201);
    // The squatter cannot claim it twice, but the owner can claim it too.
    expect(
      (
        await server.call('POST', '/domains', {
          headers: squatter.auth,
          body: { name: 'victim.example' },
        })
      ).json,
    ).toMatchObject({ code: 'DOMAIN_TAKEN' });
    const ownerDomain = await verifiedDomain(owner.auth, 'victim.example');
    // Proven: the squatter's claim is gone, and nobody can claim the name again.
    const listed = (await server.call('GET', '/domains', { headers: squatter.auth })).json as {
      items: { name: string }[];
    };
    expect(listed.items.map((domain) => domain.name)).not.toContain('victim.example');
    expect(
      (
        await server.call('POST', `/domains/${squatted.json['id'] as string}/verify`, {
          headers: squatter.auth,
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await server.call('POST', '/domains', {
          headers: squatter.auth,
          body: { name: 'victim.example' },
        })
      ).json,
    ).toMatchObject({ code: 'DOMAIN_TAKEN' });
    // The owner's domain carries aliases, signed with the owner's key.
    expect(
      (
        await server.call('POST', '/aliases', {
          headers: owner.auth,
          body: {
            domainId: ownerDomain,
            localPart: 'hello',
            destinations: ['domain-owner@example.org'],
          },
        })
      ).status,
    ).toBe(201);
  });
});

describe('system mail goes to the account’s own address', () => {
  it('mails the reset token to the stored (normalized) address, not to the spelling typed in the request', async () => {
    await signUp('case@example.org');
    const answer = await server.call('POST', '/auth/password-reset/request', {
      body: { email: 'CASE@Example.ORG' },
    });
    expect(answer.status).toBe(202);
    const outbox = get(server.environment.container('api'), 'outbox');
    const recipients = (await outbox.list()).flatMap((entry) => entry.to);
    expect(recipients).not.toContain('CASE@Example.ORG');
    const text = await Promise.all(
      (await outbox.list())
        .filter((entry) => entry.to.includes('case@example.org'))
        .map(async (entry) => (await outbox.read(entry.id)) ?? ''),
    );
    expect(text.some((message) => message.includes('Reset your Postern password'))).toBe(true);
  });
});

describe('account deletion', () => {
  it('demands the current password: 400 without it, the login answer (401 INVALID_CREDENTIALS) with a wrong one, 204 with the right one', async () => {
    const email = 'deleting@example.org';
    const { auth } = await signUp(email);
    for (const body of [undefined, {}]) {
      const missing = await server.call('DELETE', '/account', {
        headers: auth,
        ...(body === undefined ? {} : { body }),
      });
      expect(missing.status).toBe(400);
      expect(missing.json).toMatchObject({
        code: 'VALIDATION_FAILED',
        field: 'body.currentPassword',
      });
    }
    const wrong = await server.call('DELETE', '/account', {
      headers: auth,
      body: { currentPassword: 'not the password of this account' },
    });
    const wrongLogin = await server.call('POST', '/auth/login', {
      body: { email, password: 'not the password of this account' },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    expect({
      status: wrong.status,
      code: wrong.json['code'],
      message: wrong.json['message'],
    }).toEqual({
      status: wrongLogin.status,
      code: wrongLogin.json['code'],
      message: wrongLogin.json['message'],
    });
    // The account and its session outlived every refused attempt.
    expect((await server.call('GET', '/aliases', { headers: auth })).status).toBe(200);
    const deleted = await server.call('DELETE', '/account', {
      headers: auth,
      body: { currentPassword: PASSWORD },
    });
    expect(deleted.status).toBe(204);
    expect((await server.call('GET', '/aliases', { headers: auth })).status).toBe(401);
    expect(
      (await server.call('POST', '/auth/login', { body: { email, password: PASSWORD } })).json,
    ).toMatchObject({ code: 'INVALID_CREDENTIALS' });
  });

  it('counts wrong passwords against the login lockout, so a stolen access token is no password oracle', async () => {
    const email = 'guessed@example.org';
    const { auth } = await signUp(email);
    const statuses: number[] = [];
    let last: Answer | undefined;
    for (let guess = 0; guess < 4; guess += 1) {
      last = await server.call('DELETE', '/account', {
        headers: auth,
        body: { currentPassword: `guess number ${guess} of many` },
      });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect(last?.json).toMatchObject({ code: 'ACCOUNT_LOCKED' });
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
    // The same counter as login's: the right password waits too, at login and at deletion.
    expect(
      (await server.call('POST', '/auth/login', { body: { email, password: PASSWORD } })).json,
    ).toMatchObject({ code: 'ACCOUNT_LOCKED' });
    expect(
      (
        await server.call('DELETE', '/account', {
          headers: auth,
          body: { currentPassword: PASSWORD },
        })
      ).status,
    ).toBe(429);
    expect((await server.call('GET', '/aliases', { headers: auth })).status).toBe(200);
  });
});

describe('registration with an address that has an account', () => {
  const WARNING = 'Someone tried to register with your address';
  const warningsTo = async (address: string): Promise<number> =>
    (await get(server.environment.container('api'), 'outbox').list()).filter(
      (entry) => entry.to.includes(address) && entry.subject === WARNING,
    ).length;

  it('warns the owner at most once per window, and answers every attempt exactly like a new registration', async () => {
    await signUp('bombed@example.org');
    const fresh = await server.call('POST', '/auth/register', {
      body: { email: 'fresh-address@example.org', password: PASSWORD },
    });
    expect(fresh.status).toBe(202);
    // The same address in any spelling is one address: the cooldown is keyed on the normalized form.
    for (const email of [
      'bombed@example.org',
      'BOMBED@example.org',
      'bombed@Example.ORG',
      'bombed@example.org',
    ]) {
      const answer = await server.call('POST', '/auth/register', {
        body: { email, password: 'another long passphrase 77' },
      });
      expect({ email, status: answer.status, json: answer.json }).toEqual({
        email,
        status: fresh.status,
        json: fresh.json,
      });
      expect(answer.headers.get('retry-after')).toBeNull();
    }
    expect(await warningsTo('bombed@example.org')).toBe(1);
    // Per address: the owner of another address still gets a warning of their own.
    await signUp('neighbour@example.org');
    expect(
      (
        await server.call('POST', '/auth/register', {
          body: { email: 'neighbour@example.org', password: PASSWORD },
        })
      ).status,
    ).toBe(202);
    expect(await warningsTo('neighbour@example.org')).toBe(1);
    expect(await warningsTo('bombed@example.org')).toBe(1);
  });
});

describe('per-IP limits behind a proxy (API_TRUST_PROXY=true)', () => {
  it('keys the login limit on the address the load balancer appended, not on one the client wrote into X-Forwarded-For', async () => {
    const proxied = await startServer(
      'api_security_proxy',
      { API_TRUST_PROXY: 'true', LIMITS_LOGIN_PER_MINUTE: '3' },
      () => ({ dns }),
    );
    try {
      // The client writes a new X-Forwarded-For each time; the load balancer appends the real
      // peer (198.51.100.7), as ALB, nginx's $proxy_add_x_forwarded_for and HAProxy do.
      let last: Answer | undefined;
      for (let index = 0; index < 8 && last?.status !== 429; index += 1) {
        last = await proxied.call('POST', '/auth/login', {
          body: { email: `spoof${index}@example.org`, password: 'wrong password' },
          headers: { 'x-forwarded-for': `203.0.113.${index + 1}, 198.51.100.7` },
        });
      }
      expect(last?.status).toBe(429);
      expect(last?.json).toMatchObject({ code: 'RATE_LIMITED' });
      // …and a session records the load balancer's view of the client, not the client's claim.
      const { auth } = await proxied.signUp('proxied@example.org');
      const login = await proxied.call('POST', '/auth/login', {
        body: { email: 'proxied@example.org', password: PASSWORD },
        headers: { 'x-forwarded-for': '192.0.2.66, 198.51.100.8' },
      });
      expect(login.status).toBe(200);
      const { items } = (await proxied.call('GET', '/auth/sessions', { headers: auth })).json as {
        items: { id: string; ip: string }[];
      };
      expect(items.find((session) => session.id === login.json['sessionId'])?.ip).toBe(
        '198.51.100.8',
      );
    } finally {
      await proxied.close();
    }
  });
});

async function signUp(email: string) {
  return server.signUp(email);
}
