import { afterAll, describe, expect, it } from 'vitest';
import { SmtpForwarder, staticResolver } from '../src/index.js';
import type { DeliveryEvent, MxOptions, SmtpForwarderOptions } from '../src/index.js';
import { Transport } from '../src/transport.js';
import { RawClient, startRelay } from './helpers.js';
import type { TestRelay } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function relay(behaviour: Parameters<typeof startRelay>[0] = {}): Promise<TestRelay> {
  const started = await startRelay(behaviour);
  cleanups.push(() => started.close());
  return started;
}

/** A forwarder delivering straight to MX hosts; alice@fwd.test goes to alice@dest.test. */
async function direct(
  mx: MxOptions,
  options: Partial<SmtpForwarderOptions> = {},
): Promise<{ forwarder: SmtpForwarder; port: number; events: string[] }> {
  const forwarder = new SmtpForwarder({
    domain: 'fwd.test',
    resolver: staticResolver({ 'alice@fwd.test': 'alice@dest.test' }),
    transport: { mx, connectionTimeoutMs: 2000, greetingTimeoutMs: 2000 },
    fromRewrite: 'never',
    ...options,
  });
  cleanups.push(() => forwarder.close({ timeoutMs: 100 }));
  const events: string[] = [];
  const record =
    (kind: string) =>
    (event: DeliveryEvent): void => {
      events.push(`${kind} ${event.responseCode ?? '-'} ${event.reason}`);
    };
  forwarder.onBounced(record('bounced'));
  forwarder.onDeferred(record('deferred'));
  const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
  return { forwarder, port, events };
}

async function send(port: number): Promise<string> {
  const client = await RawClient.open(port);
  await client.send('EHLO x.test\r\n');
  await client.send('MAIL FROM:<a@origin.test>\r\n');
  await client.send('RCPT TO:<alice@fwd.test>\r\n');
  await client.send('DATA\r\n');
  const reply = await client.send('Subject: out\r\n\r\nx\r\n.\r\n');
  client.close();
  return reply;
}

const mxRecords =
  (...records: { exchange: string; priority: number }[]) =>
  (): Promise<{ exchange: string; priority: number }[]> =>
    Promise.resolve(records);

const allowLoopback = (): boolean => true;

describe('direct MX delivery', () => {
  it('treats a null MX (RFC 7505) as a permanent refusal and connects nowhere', async () => {
    // Node's resolveMx gives a null MX (`0 .`) as an empty exchange; nodemailer would take an
    // empty host for localhost, and hand the message to whatever listens there.
    const sink = await relay();
    const { port, events } = await direct({
      port: sink.port,
      resolveMx: mxRecords({ exchange: '', priority: 0 }),
      allowAddress: allowLoopback,
    });
    expect(await send(port)).toMatch(/^550/);
    const dotted = await direct({
      port: sink.port,
      resolveMx: mxRecords({ exchange: '.', priority: 0 }),
      allowAddress: allowLoopback,
    });
    expect(await send(dotted.port)).toMatch(/^550/);
    expect(sink.messages).toHaveLength(0);
    expect(events[0]).toMatch(/^bounced 556 .*null MX/);
  });

  it('by default refuses MX hosts on loopback or private addresses (no SSRF into internal services)', async () => {
    const sink = await relay();
    const literal = await direct({
      port: sink.port,
      resolveMx: mxRecords({ exchange: '127.0.0.1', priority: 10 }),
    });
    expect(await send(literal.port)).toMatch(/^550/);
    const named = await direct({
      port: sink.port,
      resolveMx: mxRecords({ exchange: 'mx.dest.test', priority: 10 }),
      resolveAddresses: () => Promise.resolve(['10.0.0.7', '::ffff:127.0.0.1']),
    });
    expect(await send(named.port)).toMatch(/^550/);
    expect(sink.messages).toHaveLength(0);
    expect(named.events[0]).toMatch(/private address/);
    // Allowed explicitly, the same host gets the message, by the address the lookup gave.
    const allowed = await direct({
      port: sink.port,
      resolveMx: mxRecords({ exchange: 'mx.dest.test', priority: 10 }),
      resolveAddresses: () => Promise.resolve(['127.0.0.1']),
      allowAddress: allowLoopback,
    });
    expect(await send(allowed.port)).toMatch(/^250/);
    expect(sink.messages).toHaveLength(1);
  });

  it('falls back to the domain itself when it has no MX records, and refuses a domain that does not exist', async () => {
    const sink = await relay();
    const looked: string[] = [];
    const noMx = await direct({
      port: sink.port,
      resolveMx: () =>
        Promise.reject(Object.assign(new Error('queryMx ENODATA dest.test'), { code: 'ENODATA' })),
      resolveAddresses: (host) => {
        looked.push(host);
        return Promise.resolve(['127.0.0.1']);
      },
      allowAddress: allowLoopback,
    });
    expect(await send(noMx.port)).toMatch(/^250/);
    expect(looked).toEqual(['dest.test']);
    expect(sink.messages).toHaveLength(1);
    const missing = await direct({
      port: sink.port,
      resolveMx: () =>
        Promise.reject(
          Object.assign(new Error('queryMx ENOTFOUND dest.test'), { code: 'ENOTFOUND' }),
        ),
      allowAddress: allowLoopback,
    });
    expect(await send(missing.port)).toMatch(/^550/);
    expect(sink.messages).toHaveLength(1);
  });

  it('does not retry a recipient the preferred MX refused for good at a backup MX', async () => {
    // A backup MX takes anything and bounces later: a 5xx of the primary is final.
    const primary = await relay({ rcpt: () => 550 });
    const backup = await relay({ host: '127.0.0.2', port: primary.port });
    const { port, events } = await direct({
      port: primary.port,
      resolveMx: mxRecords(
        { exchange: '127.0.0.2', priority: 20 },
        { exchange: '127.0.0.1', priority: 10 },
      ),
      allowAddress: allowLoopback,
    });
    expect(await send(port)).toMatch(/^550/);
    expect(backup.messages).toHaveLength(0);
    expect(events[0]).toMatch(/^bounced 550/);
    // A temporary refusal is still tried at the next MX.
    const busy = await relay({ rcpt: () => 450 });
    const spare = await relay({ host: '127.0.0.2', port: busy.port });
    const second = await direct({
      port: busy.port,
      resolveMx: mxRecords(
        { exchange: '127.0.0.1', priority: 10 },
        { exchange: '127.0.0.2', priority: 20 },
      ),
      allowAddress: allowLoopback,
    });
    expect(await send(second.port)).toMatch(/^250/);
    expect(spare.messages).toHaveLength(1);
  });
});

describe('outbound privacy', () => {
  it("masks the private destination in a relay's refusal before it reaches events", async () => {
    const refusing = await relay({
      rcpt: (address) => ({ code: 550, message: `5.1.1 <${address}>: Recipient unknown` }),
    });
    const forwarder = new SmtpForwarder({
      domain: 'fwd.test',
      resolver: staticResolver({ 'alice@fwd.test': 'alice.private@dest.test' }),
      transport: { relays: [{ host: '127.0.0.1', port: refusing.port }] },
      fromRewrite: 'never',
    });
    cleanups.push(() => forwarder.close({ timeoutMs: 100 }));
    const reasons: string[] = [];
    forwarder.onBounced((event) => reasons.push(event.reason));
    const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
    expect(await send(port)).toMatch(/^550/);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toContain('Recipient unknown');
    expect(reasons[0]).not.toContain('alice.private');
    expect(reasons[0]).toContain('a***@dest.test');
  });
});

describe('outbound pools', () => {
  it('keeps connections to a bounded number of MX hosts, however many domains it delivers to', async () => {
    const sink = await relay();
    const silent = {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
      child: () => silent,
    };
    const transport = new Transport(
      {
        mx: {
          port: sink.port,
          resolveMx: (domain) => Promise.resolve([{ exchange: `mx.${domain}`, priority: 10 }]),
          resolveAddresses: () => Promise.resolve(['127.0.0.1']),
          allowAddress: allowLoopback,
        },
      },
      { execute: (fn) => fn({ signal: new AbortController().signal }) },
      silent,
      'fwd.test',
    );
    cleanups.push(() => transport.close());
    // 13 messages at once, each to 10 domains of its own: 130 MX hosts.
    const results = await Promise.all(
      Array.from({ length: 13 }, (_, message) =>
        transport.deliver(
          's@fwd.test',
          Array.from({ length: 10 }, (_, index) => `r@d${message * 10 + index}.test`),
          () => Buffer.from('Subject: pools\r\n\r\nx\r\n'),
        ),
      ),
    );
    expect(results.flatMap((r) => r.results).every((r) => r.ok)).toBe(true);
    expect(sink.messages).toHaveLength(130);
    const open = (): number => sink.connections?.() ?? 0;
    // Pools past the bound are closed once idle: their connections end (QUIT) soon after.
    for (let waited = 0; open() > 100 && waited < 5_000; waited += 50)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(open()).toBeLessThanOrEqual(100);
  });
});
