import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it } from 'vitest';
import { SmtpForwarder, staticResolver } from '../src/index.js';
import type {
  Logger,
  MtaStsLookup,
  Policy,
  RateLimiter,
  SmtpForwarderOptions,
} from '../src/index.js';
import { RawClient, selfSignedCertificate, startDeadRelay, startRelay } from './helpers.js';
import type { TestRelay } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function relay(): Promise<TestRelay> {
  const started = await startRelay();
  cleanups.push(() => started.close());
  return started;
}

async function start(
  options: Partial<SmtpForwarderOptions>,
  relayPort?: number,
): Promise<{ forwarder: SmtpForwarder; port: number }> {
  const forwarder = new SmtpForwarder({
    domain: 'fwd.test',
    resolver: staticResolver({ 'alice@fwd.test': 'alice@dest.test' }),
    transport: {
      relays: [{ host: '127.0.0.1', port: relayPort ?? 9 }],
      connectionTimeoutMs: 1000,
      greetingTimeoutMs: 1000,
    },
    fromRewrite: 'never',
    ...options,
  });
  cleanups.push(() => forwarder.close({ timeoutMs: 100 }));
  const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
  return { forwarder, port };
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function transaction(client: RawClient, sender = 'a@origin.test'): Promise<string[]> {
  return [
    await client.send('EHLO x.test\r\n'),
    await client.send(`MAIL FROM:<${sender}>\r\n`),
    await client.send('RCPT TO:<alice@fwd.test>\r\n'),
  ];
}

describe('limits and ports', () => {
  it('refuses connections and senders over the rate limit, with no limiter state in the forwarder', async () => {
    const keys: string[] = [];
    const limiter: RateLimiter = {
      consume: (key) => {
        keys.push(key);
        return Promise.resolve(
          key === 'sender:spammer@origin.test' || keys.filter((k) => k.startsWith('ip:')).length > 2
            ? { allowed: false, retryAfterMs: 30_000 }
            : { allowed: true, retryAfterMs: 0 },
        );
      },
    };
    const { forwarder, port } = await start({ rateLimiter: limiter });
    const first = await RawClient.open(port);
    const replies = await transaction(first, 'spammer@origin.test');
    expect(replies[1]).toMatch(/^450 4\.7\.1 .*30s/);
    first.close();
    const second = await RawClient.open(port);
    second.close();
    // The third connection is refused instead of greeted.
    const third = await RawClient.open(port);
    expect(third.greeting).toMatch(/^421 4\.7\.0 Rate limit reached, try again in 30s/);
    third.close();
    expect(keys).toContain('ip:127.0.0.1');
    expect(forwarder.stats().rateLimited).toBe(2);
  });

  it('limits the null sender per client address, so MAIL FROM:<> is no way around the sender limit', async () => {
    const keys: string[] = [];
    const limiter: RateLimiter = {
      consume: (key) => {
        keys.push(key);
        const used = keys.filter((k) => k === key).length;
        return Promise.resolve(
          key.startsWith('sender:') && used > 2
            ? { allowed: false, retryAfterMs: 5_000 }
            : { allowed: true, retryAfterMs: 0 },
        );
      },
    };
    const { forwarder, port } = await start({ rateLimiter: limiter });
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    const answers: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      answers.push(await client.send('MAIL FROM:<>\r\n'));
      await client.send('RSET\r\n');
    }
    client.close();
    expect(answers[0]).toMatch(/^250/);
    expect(answers[1]).toMatch(/^250/);
    expect(answers[2]).toMatch(/^450 4\.7\.1 Sender rate limit reached, try again in 5s/);
    expect(keys.filter((k) => k.startsWith('sender:'))).toEqual([
      'sender:<>@127.0.0.1',
      'sender:<>@127.0.0.1',
      'sender:<>@127.0.0.1',
    ]);
    expect(forwarder.stats().rateLimited).toBe(1);
  });

  it('limits connections per IP and messages per session', async () => {
    const { port } = await start({ limits: { maxConnectionsPerIp: 1, maxMessagesPerSession: 1 } });
    const first = await RawClient.open(port);
    const second = await RawClient.open(port);
    expect(second.greeting).toMatch(/^421 4\.7\.0 Too many connections/);
    second.close();
    await first.send('EHLO x.test\r\n');
    expect(await first.send('MAIL FROM:<a@origin.test>\r\n')).toMatch(/^250/);
    await first.send('RSET\r\n');
    expect(await first.send('MAIL FROM:<a@origin.test>\r\n')).toMatch(/^421 4\.7\.0/);
    first.close();
  });

  it('answers 451 when the resolver fails or returns an unusable destination', async () => {
    const { port } = await start({
      resolver: (address) =>
        address.startsWith('boom')
          ? Promise.reject(new Error('db down'))
          : Promise.resolve({ destinations: ['not an address'] }),
    });
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<a@origin.test>\r\n');
    expect(await client.send('RCPT TO:<boom@fwd.test>\r\n')).toMatch(/^451 4\.3\.0/);
    expect(await client.send('RCPT TO:<bad@fwd.test>\r\n')).toMatch(
      /^451 4\.3\.0 Alias misconfigured/,
    );
    expect(await client.send('RCPT TO:<a b@fwd.test>\r\n')).toMatch(/^5/);
    client.close();
  });

  it('never forwards for a resolver that answers an unknown disabled action', async () => {
    const sink = await relay();
    const { port } = await start(
      {
        resolver: () =>
          Promise.resolve({ destinations: ['alice@dest.test'], disabled: 'blocked' as never }),
      },
      sink.port,
    );
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<a@origin.test>\r\n');
    expect(await client.send('RCPT TO:<alice@fwd.test>\r\n')).toMatch(
      /^451 4\.3\.0 Alias misconfigured/,
    );
    client.close();
    expect(sink.messages).toHaveLength(0);
  });

  it('closes a session after maxCommandsPerSession commands of any kind', async () => {
    const { forwarder, port } = await start({ limits: { maxCommandsPerSession: 5 } });
    const rejected: string[] = [];
    forwarder.onRejected((event) => rejected.push(`${event.stage} ${event.responseCode}`));
    const client = await RawClient.open(port);
    expect(await client.send('EHLO x.test\r\n')).toMatch(/^250/);
    expect(await client.send('NOOP\r\n')).toMatch(/^250/);
    expect(await client.send('RSET\r\n')).toMatch(/^250/);
    expect(await client.send('BOGUS\r\n')).toMatch(/^500/);
    expect(await client.send('NOOP\r\n')).toMatch(/^250/);
    expect(await client.send('NOOP\r\n')).toMatch(/^421 .*Too many commands/);
    expect(await client.reply()).toBe('closed');
    client.close();
    expect(rejected).toEqual(['command 421']);
    // A new session starts its own count.
    const next = await RawClient.open(port);
    expect(await next.send('EHLO x.test\r\n')).toMatch(/^250/);
    next.close();
  });

  it('by default lets a session send its whole message and recipient allowance', async () => {
    // 3 messages × 800 recipients: 2,406 commands, past the 2,000 floor, within 3 × (800 + 4).
    const recipients = Array.from({ length: 800 }, (_, index) => `r${index}@fwd.test`);
    const { forwarder, port } = await start({
      resolver: staticResolver({ '*@fwd.test': 'alice@dest.test' }),
      limits: { maxMessagesPerSession: 3, maxRecipients: 800 },
    });
    const rejected: string[] = [];
    forwarder.onRejected((event) => rejected.push(`${event.stage} ${event.responseCode}`));
    const client = await RawClient.open(port);
    expect(await client.send('EHLO x.test\r\n')).toMatch(/^250/);
    for (let message = 0; message < 3; message += 1) {
      expect(await client.send('MAIL FROM:<s@origin.test>\r\n')).toMatch(/^250/);
      for (const recipient of recipients)
        expect(await client.send(`RCPT TO:<${recipient}>\r\n`)).toMatch(/^250/);
      expect(await client.send('RSET\r\n')).toMatch(/^250/);
    }
    expect(await client.send('NOOP\r\n')).toMatch(/^250/);
    client.close();
    expect(rejected).toEqual([]);
  });

  it('relays many messages at once under the default policy without piling listeners on one signal', async () => {
    const sink = await startRelay({ rcptDelayMs: 100 });
    cleanups.push(() => sink.close());
    const { port } = await start(
      { transport: { relays: [{ host: '127.0.0.1', port: sink.port }], maxConnections: 20 } },
      sink.port,
    );
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(`${warning.name}: ${warning.message}`);
    };
    process.on('warning', onWarning);
    try {
      const client = nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        pool: true,
        maxConnections: 15,
        ignoreTLS: true,
      });
      await Promise.all(
        Array.from({ length: 15 }, (_, index) =>
          client.sendMail({
            envelope: { from: 's@origin.test', to: ['alice@fwd.test'] },
            raw: `From: s@origin.test\r\nSubject: ${index}\r\n\r\nbody\r\n`,
          }),
        ),
      );
      client.close();
      // Node reports a listener warning on the next tick after the 11th listener.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(sink.messages).toHaveLength(15);
    expect(warnings.filter((warning) => warning.includes('MaxListeners'))).toEqual([]);
  });

  it('wraps every outbound attempt in the policy', async () => {
    const sink = await relay();
    let calls = 0;
    const policy: Policy = {
      execute: (fn, signal) => {
        calls += 1;
        return fn({ signal: signal ?? new AbortController().signal });
      },
    };
    const { port } = await start({ policy }, sink.port);
    const client = await RawClient.open(port);
    await transaction(client);
    await client.send('DATA\r\n');
    expect(await client.send('Subject: p\r\n\r\nx\r\n.\r\n')).toMatch(/^250/);
    client.close();
    expect(calls).toBe(1);
    expect(sink.messages).toHaveLength(1);
  });

  it("hands the policy a relay's refusal of recipients or of the message as an answer, and only its failures as errors", async () => {
    // A circuit breaker as the policy must not open because one mailbox keeps answering 450.
    const outcomes: string[] = [];
    const policy: Policy = {
      execute: async (fn, signal) => {
        try {
          const value = await fn({ signal: signal ?? new AbortController().signal });
          outcomes.push('answered');
          return value;
        } catch (error) {
          outcomes.push('failed');
          throw error;
        }
      },
    };
    const send = async (port: number): Promise<string> => {
      const client = await RawClient.open(port);
      await transaction(client);
      await client.send('DATA\r\n');
      const answer = await client.send('Subject: p\r\n\r\nx\r\n.\r\n');
      client.close();
      return answer;
    };
    const busy = await startRelay({ rcpt: () => 450 });
    const gone = await startRelay({ rcpt: () => 550 });
    const spam = await startRelay({ data: () => 554 });
    const dead = await startDeadRelay();
    cleanups.push(
      () => busy.close(),
      () => gone.close(),
      () => spam.close(),
      () => dead.close(),
    );

    expect(await send((await start({ policy }, busy.port)).port)).toMatch(/^451/);
    expect(await send((await start({ policy }, gone.port)).port)).toMatch(/^550/);
    expect(await send((await start({ policy }, spam.port)).port)).toMatch(/^550/);
    expect(outcomes).toEqual(['answered', 'answered', 'answered']);
    expect(await send((await start({ policy }, dead.port)).port)).toMatch(/^451/);
    expect(outcomes).toEqual(['answered', 'answered', 'answered', 'failed']);
  });

  it('ends an attempt when the policy aborts it, and the relay keeps no part of the cut-off body', async () => {
    // The relay reads nothing for 1.5 s. Loopback's socket buffers absorb about 4 MiB at once, so
    // a 12 MiB body (spilled to disk, streamed out) stalls on TCP back-pressure, and the policy's
    // 300 ms timeout aborts the attempt mid-DATA.
    const slow = await startRelay({ stallDataMs: 1_500 });
    cleanups.push(() => slow.close());
    let aborted = 0;
    const policy: Policy = {
      execute: async (fn) => {
        const controller = new AbortController();
        const timer = setTimeout(() => {
          aborted += 1;
          controller.abort(new Error('policy timeout'));
        }, 300);
        try {
          return await fn({ signal: controller.signal });
        } finally {
          clearTimeout(timer);
        }
      },
    };
    const { forwarder, port } = await start(
      { policy, limits: { memoryBytes: 64 * 1024, maxMessageBytes: 16 * 2 ** 20 } },
      slow.port,
    );
    const deferred: string[] = [];
    forwarder.onDeferred((event) => deferred.push(event.reason));
    const client = await RawClient.open(port);
    await transaction(client);
    await client.send('DATA\r\n');
    const line = `${'y'.repeat(998)}\r\n`;
    const started = Date.now();
    const reply = await client.send(`Subject: big\r\n\r\n${line.repeat(12_600)}.\r\n`);
    const waited = Date.now() - started;
    client.close();
    expect(reply).toMatch(/^451 4\.4\.0/);
    expect(aborted).toBe(1);
    // Answered on the abort, not when the stalled relay would have finished.
    expect(waited).toBeLessThan(1_400);
    expect(deferred[0]).toBe('EABORTED');
    // The relay resumes reading after 1.5 s: the body it gets has no end, so it stores nothing.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(slow.messages).toHaveLength(0);
  });

  it('ends an attempt aborted before DATA, sends no body, and the next message still goes through', async () => {
    let slowRcpt = true;
    const slow = await startRelay({ rcptDelayMs: 800 });
    cleanups.push(() => slow.close());
    const policy: Policy = {
      execute: async (fn) => {
        const controller = new AbortController();
        const timer = setTimeout(
          () => controller.abort(new Error('policy timeout')),
          slowRcpt ? 200 : 5_000,
        );
        try {
          return await fn({ signal: controller.signal });
        } finally {
          clearTimeout(timer);
        }
      },
    };
    const { port } = await start({ policy }, slow.port);
    const client = await RawClient.open(port);
    await transaction(client);
    await client.send('DATA\r\n');
    const started = Date.now();
    expect(await client.send('Subject: first\r\n\r\nx\r\n.\r\n')).toMatch(/^451 4\.4\.0/);
    expect(Date.now() - started).toBeLessThan(700);
    // The relay answers RCPT later; the body it is then offered has ended in an error, not a dot.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(slow.messages).toHaveLength(0);
    slowRcpt = false;
    await transaction(client);
    await client.send('DATA\r\n');
    expect(await client.send('Subject: second\r\n\r\ny\r\n.\r\n')).toMatch(/^250/);
    client.close();
    expect(slow.messages.map((m) => m.data.toString('latin1'))).toEqual([
      expect.stringContaining('Subject: second'),
    ]);
  });

  it('delivers directly to MX hosts in priority order, through an injected MX lookup', async () => {
    const sink = await relay();
    const lookups: string[] = [];
    const { port } = await start({
      transport: {
        mx: {
          port: sink.port,
          allowAddress: () => true,
          resolveMx: (domain) => {
            lookups.push(domain);
            return Promise.resolve([
              { exchange: '127.0.0.2', priority: 20 },
              { exchange: '127.0.0.1', priority: 10 },
            ]);
          },
        },
      },
    });
    const client = await RawClient.open(port);
    await transaction(client);
    await client.send('DATA\r\n');
    expect(await client.send('Subject: mx\r\n\r\nx\r\n.\r\n')).toMatch(/^250/);
    client.close();
    expect(lookups).toEqual(['dest.test']);
    expect(sink.messages).toHaveLength(1);
  });

  it('tries MX hosts of equal preference in random order, after every more preferred one', async () => {
    const sink = await relay();
    const firstTried: string[] = [];
    let resolved: string[] = [];
    const { port } = await start({
      transport: {
        mx: {
          port: sink.port,
          allowAddress: () => true,
          resolveMx: () => {
            resolved = [];
            return Promise.resolve([
              { exchange: 'mx-c.dest.test', priority: 20 },
              { exchange: 'mx-a.dest.test', priority: 10 },
              { exchange: 'mx-b.dest.test', priority: 10 },
            ]);
          },
          resolveAddresses: (host) => {
            resolved.push(host);
            if (resolved.length === 3) firstTried.push(resolved.join(' '));
            return Promise.resolve(['127.0.0.1']);
          },
        },
      },
    });
    const client = await RawClient.open(port);
    for (let i = 0; i < 24; i += 1) {
      await transaction(client);
      await client.send('DATA\r\n');
      expect(await client.send(`Subject: mx ${i}\r\n\r\nx\r\n.\r\n`)).toMatch(/^250/);
    }
    client.close();
    expect(sink.messages).toHaveLength(24);
    // Hosts are looked up in the order they are tried: the two of preference 10 first, either
    // way round (both orders turn up: all 24 alike is a 1 in 2^23 chance), then preference 20.
    expect(new Set(firstTried)).toEqual(
      new Set([
        'mx-a.dest.test mx-b.dest.test mx-c.dest.test',
        'mx-b.dest.test mx-a.dest.test mx-c.dest.test',
      ]),
    );
  });

  it('enforces MTA-STS: only listed MX hosts, and never plaintext', async () => {
    const sink = await relay();
    const mxTo = (mtaSts: MtaStsLookup) =>
      start({
        transport: {
          mx: {
            port: sink.port,
            resolveMx: () => Promise.resolve([{ exchange: '127.0.0.1', priority: 10 }]),
            allowAddress: () => true,
            mtaSts,
          },
        },
      });
    const send = async (port: number): Promise<string> => {
      const client = await RawClient.open(port);
      await transaction(client);
      await client.send('DATA\r\n');
      const reply = await client.send('Subject: sts\r\n\r\nx\r\n.\r\n');
      client.close();
      return reply;
    };
    const unlisted = await mxTo(() => Promise.resolve({ mode: 'enforce', mx: ['mx.dest.test'] }));
    expect(await send(unlisted.port)).toMatch(/^451/);
    // Listed, but the host offers no STARTTLS: enforce forbids falling back to plaintext.
    const plaintext = await mxTo(() => Promise.resolve({ mode: 'enforce', mx: ['127.0.0.1'] }));
    expect(await send(plaintext.port)).toMatch(/^451/);
    expect(sink.messages).toHaveLength(0);
    const testing = await mxTo(() => Promise.resolve({ mode: 'testing', mx: ['mx.dest.test'] }));
    expect(await send(testing.port)).toMatch(/^250/);
    expect(sink.messages).toHaveLength(1);
  });

  it('answers 451 when the MX lookup fails', async () => {
    const { port } = await start({
      transport: {
        mx: {
          resolveMx: () => Promise.reject(Object.assign(new Error('x'), { code: 'ESERVFAIL' })),
        },
      },
    });
    const client = await RawClient.open(port);
    await transaction(client);
    await client.send('DATA\r\n');
    expect(await client.send('Subject: mx\r\n\r\nx\r\n.\r\n')).toMatch(/^451/);
    client.close();
  });

  it('closes gracefully: idle sessions get 421 once the timeout passes', async () => {
    const { forwarder, port } = await start({});
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    const closing = forwarder.close({ timeoutMs: 50 });
    expect(await client.reply()).toMatch(/^421/);
    await closing;
    client.close();
    expect(forwarder.stats().activeConnections).toBe(0);
  });

  it('offers STARTTLS with the configured certificate and reloads it without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const make = (name: string) => selfSignedCertificate(dir, name);
    const sink = await relay();
    const first = await make('first.test');
    const second = await make('second.test');
    const { forwarder, port } = await start({ tls: first }, sink.port);
    const seen: string[] = [];
    // The client trusts exactly one certificate, so a send proves which one the server presented.
    const send = async (ca: string): Promise<void> => {
      const client = nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        requireTLS: true,
        tls: {
          ca,
          checkServerIdentity: (_host: string, cert: PeerCertificate) => {
            seen.push(String(cert.subject.CN));
            return undefined;
          },
        },
      });
      await client.sendMail({
        envelope: { from: 's@origin.test', to: ['alice@fwd.test'] },
        raw: 'Subject: tls\r\n\r\nsecret\r\n',
      });
      client.close();
    };
    await send(first.cert);
    forwarder.reloadTls(second);
    await expect(send(first.cert)).rejects.toThrow();
    await send(second.cert);
    expect(seen).toEqual(['first.test', 'second.test']);
    expect(sink.messages.every((m) => m.data.toString().includes('with ESMTPS'))).toBe(true);
    expect(sink.messages).toHaveLength(2);
  });

  it('lets a message in flight finish during close(), and answers 250 for it', async () => {
    const slow = await startRelay({ delayMs: 300 });
    cleanups.push(() => slow.close());
    const { forwarder, port } = await start({}, slow.port);
    const client = await RawClient.open(port);
    await transaction(client);
    await client.send('DATA\r\n');
    const reply = client.send('Subject: in flight\r\n\r\nx\r\n.\r\n');
    await waitUntil(() => forwarder.stats().connections > 0 && slow.messages.length === 0);
    const closing = forwarder.close({ timeoutMs: 5_000 });
    expect(await reply).toMatch(/^250/);
    expect(await client.send('MAIL FROM:<a@origin.test>\r\n')).toMatch(/^421/);
    client.close();
    await closing;
    expect(slow.messages).toHaveLength(1);
  });

  it('answers a failing rate limiter with a generic 421 and logs masked addresses, never bodies', async () => {
    const lines: string[] = [];
    const record = (object: object | string, message?: string): void => {
      lines.push(JSON.stringify(object) + (message ?? ''));
    };
    const logger: Logger = {
      debug: record,
      info: record,
      warn: record,
      error: record,
      child: () => logger,
    };
    const broken: RateLimiter = {
      consume: (key) =>
        key.startsWith('ip:')
          ? Promise.reject(new Error('redis at 10.0.0.7:6379 is down'))
          : Promise.resolve({ allowed: true, retryAfterMs: 0 }),
    };
    const { port } = await start({ rateLimiter: broken, logger });
    const refused = await RawClient.open(port);
    expect(refused.greeting).toMatch(/^421 4\.3\.0 Temporary local problem/);
    expect(refused.greeting).not.toContain('redis');
    refused.close();
    const { port: other } = await start({
      logger,
      resolver: () => Promise.reject(new Error('db down')),
    });
    const client = await RawClient.open(other);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<secret.person@origin.test>\r\n');
    expect(await client.send('RCPT TO:<alice@fwd.test>\r\n')).toMatch(/^451/);
    client.close();
    const text = lines.join('\n');
    expect(text).toContain('a***@fwd.test');
    expect(text).not.toContain('alice@fwd.test');
    expect(text).not.toContain('secret.person');
  });

  it('forgets a client that left while the rate limiter answered, and still counts the commands of the next', async () => {
    const warnings: string[] = [];
    const quiet = (): void => undefined;
    const logger: Logger = {
      debug: quiet,
      info: quiet,
      warn: (object, message) => warnings.push(`${JSON.stringify(object)} ${message ?? ''}`),
      error: quiet,
      child: () => logger,
    };
    // A Redis round trip the test holds until the client is gone.
    let held: (() => void)[] | undefined = [];
    const slow: RateLimiter = {
      consume: () =>
        new Promise((resolve) => {
          const answer = (): void => resolve({ allowed: true, retryAfterMs: 0 });
          if (held === undefined) answer();
          else held.push(answer);
        }),
    };
    const { forwarder, port } = await start({
      rateLimiter: slow,
      logger,
      limits: { maxCommandsPerSession: 3 },
    });
    const socket = connect(port, '127.0.0.1');
    await waitUntil(() => held!.length === 1);
    await new Promise((resolve) => {
      socket.once('close', resolve);
      socket.destroy();
    });
    await waitUntil(() => forwarder.stats().activeConnections === 0);
    await new Promise((resolve) => setImmediate(resolve));
    const answers = held;
    held = undefined;
    for (const answer of answers) answer();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(warnings.filter((line) => line.includes('maxCommandsPerSession'))).toEqual([]);
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    await client.send('NOOP\r\n');
    await client.send('NOOP\r\n');
    expect(await client.send('NOOP\r\n')).toMatch(/^421/);
    client.close();
  });

  it('refuses invalid options with INVALID_OPTIONS', () => {
    expect(
      () => new SmtpForwarder({ domain: 'not a domain', resolver: staticResolver({}) }),
    ).toThrow(/domain/);
    expect(() => new SmtpForwarder({ domain: 'fwd.test', resolver: 'x' as never })).toThrow(
      /resolver/,
    );
    expect(
      () =>
        new SmtpForwarder({
          domain: 'fwd.test',
          resolver: staticResolver({}),
          limits: { maxRecipients: 0 },
        }),
    ).toThrow(/maxRecipients/);
    for (const collectGarbageEveryBytes of [0, -1, 65_535, Number.NaN, Number.POSITIVE_INFINITY]) {
      const make = (): SmtpForwarder =>
        new SmtpForwarder({
          domain: 'fwd.test',
          resolver: staticResolver({}),
          collectGarbageEveryBytes,
        });
      expect(make).toThrow(/collectGarbageEveryBytes/);
      expect(make).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    }
    expect(
      () =>
        new SmtpForwarder({
          domain: 'fwd.test',
          resolver: staticResolver({}),
          transport: { relays: [] },
        }),
    ).toThrow(/relays or mx/);
    expect(() =>
      new SmtpForwarder({ domain: 'fwd.test', resolver: staticResolver({}) }).reverseSrs(
        'x@fwd.test',
      ),
    ).toThrow(/SRS is not configured/);
  });
});
