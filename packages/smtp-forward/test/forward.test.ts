import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpForwarder, SmtpForwardError, staticResolver } from '../src/index.js';
import type { DeliveryEvent, RejectedEvent } from '../src/index.js';
import { RawClient, freePort, run, startDeadRelay, startRelay } from './helpers.js';
import type { TestRelay } from './helpers.js';

const SECRET = 'test-secret-0123456789abcdef';
const relays: TestRelay[] = [];
const forwarders: SmtpForwarder[] = [];

async function relay(behaviour?: Parameters<typeof startRelay>[0]): Promise<TestRelay> {
  const started = await startRelay(behaviour);
  relays.push(started);
  return started;
}

async function deadRelay(): Promise<number> {
  const dead = await startDeadRelay();
  relays.push({ port: dead.port, messages: [], close: dead.close });
  return dead.port;
}

async function forwarder(
  relayPorts: number[],
  extra: Partial<ConstructorParameters<typeof SmtpForwarder>[0]> = {},
): Promise<{ forwarder: SmtpForwarder; port: number }> {
  const instance = new SmtpForwarder({
    domain: 'fwd.test',
    resolver: staticResolver({
      'alice@fwd.test': 'alice@dest.test',
      'team@fwd.test': ['bob@dest.test', 'carol@dest.test'],
      'off@fwd.test': { destinations: [], disabled: 'reject', reason: 'closed by owner' },
      'later@fwd.test': { destinations: ['x@dest.test'], disabled: 'defer' },
      'soon@fwd.test': { destinations: ['x@dest.test'], disabled: 'defer-recipient' },
      'void@fwd.test': { destinations: [], disabled: 'discard' },
      '*@catch.test': 'catch@dest.test',
    }),
    transport: {
      relays: relayPorts.map((port) => ({ host: '127.0.0.1', port })),
      connectionTimeoutMs: 2000,
      greetingTimeoutMs: 2000,
      socketTimeoutMs: 5000,
    },
    srs: { secrets: [SECRET] },
    fromRewrite: 'never',
    ...extra,
  });
  forwarders.push(instance);
  const address = await instance.listen({ port: 0, host: '127.0.0.1' });
  return { forwarder: instance, port: address.port };
}

function swaks(port: number, to: string, extra: string[] = []): ReturnType<typeof run> {
  return run('/usr/bin/swaks', [
    '--server',
    '127.0.0.1',
    '--port',
    String(port),
    '--from',
    'sender@origin.test',
    '--to',
    to,
    '--helo',
    'client.test',
    '--hide-all',
    ...extra,
  ]);
}

afterAll(async () => {
  await Promise.all(forwarders.map((f) => f.close({ timeoutMs: 200 })));
  await Promise.all(relays.map((r) => r.close()));
});

describe('SmtpForwarder with real SMTP peers', () => {
  let sink: TestRelay;
  let port: number;
  let instance: SmtpForwarder;
  const rejected: RejectedEvent[] = [];
  const forwarded: DeliveryEvent[] = [];

  beforeAll(async () => {
    sink = await relay();
    ({ forwarder: instance, port } = await forwarder([sink.port]));
    instance.onRejected((event) => rejected.push(event));
    instance.onForwarded((event) => forwarded.push(event));
  });

  it('forwards a message sent by swaks, with an SRS sender, a Received line and the body intact', async () => {
    const body = `token ${randomBytes(8).toString('hex')}`;
    const result = await swaks(port, 'alice@fwd.test', ['--body', body, '--header', 'Subject: hi']);
    expect(result.code).toBe(0);
    const message = sink.messages.find((m) => m.data.toString().includes(body));
    expect(message).toBeDefined();
    expect(message!.to).toEqual(['alice@dest.test']);
    expect(message!.from).toMatch(/^SRS0=[a-z2-7]{8}=[a-z2-7]{2}=origin\.test=sender@fwd\.test$/);
    expect(instance.reverseSrs(message!.from)).toBe('sender@origin.test');
    const text = message!.data.toString();
    expect(text.startsWith('Received: from client.test ([127.0.0.1])')).toBe(true);
    expect(text).toContain('Delivered-To: alice@fwd.test');
    expect(text).toContain('Subject: hi');
    expect(forwarded.at(-1)?.recipients).toEqual(['a***@dest.test']);
    expect(instance.stats().forwarded).toBeGreaterThan(0);
  });

  it('is not an open relay: unknown and foreign recipients get 550 at RCPT and nothing is delivered', async () => {
    const before = sink.messages.length;
    const client = await RawClient.open(port);
    expect(await client.send('EHLO x.test\r\n')).toMatch(/^250/);
    expect(await client.send('MAIL FROM:<a@origin.test>\r\n')).toMatch(/^250/);
    expect(await client.send('RCPT TO:<victim@gmail.com>\r\n')).toMatch(/^550 5\.1\.1/);
    expect(await client.send('RCPT TO:<nobody@fwd.test>\r\n')).toMatch(/^550 5\.1\.1/);
    expect(await client.send('DATA\r\n')).toMatch(/^503/);
    client.close();
    expect(sink.messages.length).toBe(before);
    expect(rejected.filter((r) => r.stage === 'rcpt').map((r) => r.address)).toContain(
      'v***@gmail.com',
    );
  });

  it('forwards catch-all and +tag aliases, keeping the tag', async () => {
    expect((await swaks(port, 'anything@catch.test')).code).toBe(0);
    expect((await swaks(port, 'alice+news@fwd.test')).code).toBe(0);
    const recipients = sink.messages.flatMap((m) => m.to);
    expect(recipients).toContain('catch@dest.test');
    expect(recipients).toContain('alice+news@dest.test');
  });

  it('refuses, defers or discards disabled aliases as the resolver says', async () => {
    const before = sink.messages.length;
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<a@origin.test>\r\n');
    expect(await client.send('RCPT TO:<off@fwd.test>\r\n')).toMatch(
      /^550 5\.2\.1 .*closed by owner/,
    );
    expect(await client.send('RCPT TO:<soon@fwd.test>\r\n')).toMatch(/^450 4\.2\.1/);
    expect(await client.send('RCPT TO:<void@fwd.test>\r\n')).toMatch(/^250/);
    expect(await client.send('DATA\r\n')).toMatch(/^354/);
    expect(await client.send('Subject: gone\r\n\r\nbye\r\n.\r\n')).toMatch(/^250/);
    client.close();
    expect(sink.messages.length).toBe(before);
    expect(instance.stats().discarded).toBeGreaterThan(0);
  });

  it('answers a deferred alias 421 and ends the session, so the sender retries the whole message', async () => {
    const before = sink.messages.length;
    const rejectedBefore = instance.stats().rejected;
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<a@origin.test>\r\n');
    expect(await client.send('RCPT TO:<alice@fwd.test>\r\n')).toMatch(/^250/);
    expect(await client.send('RCPT TO:<later@fwd.test>\r\n')).toMatch(/^421 4\.2\.1/);
    // The server hangs up: nothing more is read, and nothing was relayed for the accepted recipient.
    expect(await client.send('DATA\r\n')).toBe('closed');
    client.close();
    expect(sink.messages.length).toBe(before);
    expect(instance.stats().rejected).toBe(rejectedBefore + 1);
  });

  it('tells when a session ends, with the id its other events carried', async () => {
    const closed: string[] = [];
    const rejectedIn: string[] = [];
    const subscriptions = [
      instance.onSessionClosed((event) => closed.push(event.sessionId)),
      instance.onRejected((event) => rejectedIn.push(event.sessionId)),
    ];
    try {
      const client = await RawClient.open(port);
      await client.send('EHLO x.test\r\n');
      await client.send('MAIL FROM:<a@origin.test>\r\n');
      expect(await client.send('RCPT TO:<nobody@fwd.test>\r\n')).toMatch(/^550/);
      // A session that leaves without QUIT ends too.
      client.close();
      const [session] = rejectedIn;
      expect(session).toBeDefined();
      for (let waited = 0; !closed.includes(session!) && waited < 5_000; waited += 20)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(closed).toContain(session);
    } finally {
      for (const subscription of subscriptions) subscription.dispose();
    }
  });

  it('delivers a bounce sent to an SRS address to the original sender, and refuses forged ones', async () => {
    const srsAddress = sink.messages.find((m) => m.from.startsWith('SRS0='))!.from;
    const bouncer = await RawClient.open(port);
    await bouncer.send('EHLO mx.origin.test\r\n');
    expect(await bouncer.send('MAIL FROM:<>\r\n')).toMatch(/^250/);
    expect(await bouncer.send(`RCPT TO:<${srsAddress}>\r\n`)).toMatch(/^250/);
    await bouncer.send('DATA\r\n');
    expect(await bouncer.send('Subject: Undelivered\r\n\r\nbounce body\r\n.\r\n')).toMatch(/^250/);
    bouncer.close();
    const delivered = sink.messages.at(-1)!;
    expect(delivered.to).toEqual(['sender@origin.test']);
    expect(delivered.from).toBe('');
    const forged = srsAddress.replace(/^SRS0=[a-z2-7]{8}/, 'SRS0=aaaaaaaa');
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<>\r\n');
    expect(await client.send(`RCPT TO:<${forged}>\r\n`)).toMatch(
      /^550 5\.1\.1 Invalid SRS address \(SRS_FORGED\)/,
    );
    // A valid SRS address relays bounces only: anyone who saw one (in mail to their own alias)
    // could otherwise send through it to the sender it names.
    await client.send('RSET\r\n');
    await client.send('MAIL FROM:<spammer@evil.test>\r\n');
    expect(await client.send(`RCPT TO:<${srsAddress}>\r\n`)).toMatch(/^550 5\.7\.1/);
    client.close();
  });

  it('turns bare LF end-of-data tricks into one normalised message, never two', async () => {
    const before = sink.messages.length;
    const client = await RawClient.atData(port);
    const smuggled =
      'Subject: one\r\n\r\nfirst\n.\r\nMAIL FROM:<evil@origin.test>\r\nRCPT TO:<alice@fwd.test>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\n';
    expect(await client.send(smuggled)).toMatch(/^250/);
    client.close();
    expect(sink.messages.length).toBe(before + 1);
    const data = sink.messages.at(-1)!.data.toString('latin1');
    expect(data).not.toMatch(/[^\r]\n/);
    expect(data).toContain('first\r\n.\r\nMAIL FROM:<evil@origin.test>');
    expect(instance.stats().normalisedLineEndings).toBeGreaterThan(0);
  });

  it('answers 552 for an oversized message, drains it, and keeps the session usable', async () => {
    const small = await forwarder([sink.port], { limits: { maxMessageBytes: 10_000 } });
    const before = sink.messages.length;
    const client = await RawClient.open(small.port);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<a@origin.test>\r\n');
    await client.send('RCPT TO:<alice@fwd.test>\r\n');
    await client.send('DATA\r\n');
    const big = `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(50);
    expect(await client.send(`${big}.\r\n`)).toMatch(/^552 5\.3\.4/);
    expect(await client.send('MAIL FROM:<a@origin.test>\r\n')).toMatch(/^250/);
    expect(await client.send('RCPT TO:<alice@fwd.test>\r\n')).toMatch(/^250/);
    expect(await client.send('DATA\r\n')).toMatch(/^354/);
    expect(await client.send('Subject: small\r\n\r\nok\r\n.\r\n')).toMatch(/^250/);
    client.close();
    expect(sink.messages.length).toBe(before + 1);
    expect(small.forwarder.stats().oversized).toBe(1);
  });

  it('limits recipients per message with 452', async () => {
    const few = await forwarder([sink.port], { limits: { maxRecipients: 2 } });
    const client = await RawClient.open(few.port);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<a@origin.test>\r\n');
    expect(await client.send('RCPT TO:<alice@fwd.test>\r\n')).toMatch(/^250/);
    expect(await client.send('RCPT TO:<team@fwd.test>\r\n')).toMatch(/^250/);
    expect(await client.send('RCPT TO:<a@catch.test>\r\n')).toMatch(/^452 4\.5\.3/);
    client.close();
  });

  it('stops mail loops by hop count and by a repeated Delivered-To', async () => {
    const client = await RawClient.atData(port);
    expect(
      await client.send('Delivered-To: alice@fwd.test\r\nSubject: loop\r\n\r\nx\r\n.\r\n'),
    ).toMatch(/^554 5\.4\.6/);
    await client.send('MAIL FROM:<a@origin.test>\r\n');
    await client.send('RCPT TO:<alice@fwd.test>\r\n');
    await client.send('DATA\r\n');
    const hops = 'Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n'.repeat(30);
    expect(await client.send(`${hops}Subject: loop\r\n\r\nx\r\n.\r\n`)).toMatch(/^554 5\.4\.6/);
    client.close();
    expect(instance.stats().loops).toBe(2);
  });

  it('refuses a header section that starts with a folded line, which would continue our own fields', async () => {
    const before = sink.messages.length;
    const client = await RawClient.atData(port);
    const folded = ' ; dkim=pass header.d=paypal.com\r\nSubject: x\r\n\r\nbody\r\n.\r\n';
    expect(await client.send(folded)).toMatch(/^550 5\.6\.0/);
    client.close();
    expect(sink.messages).toHaveLength(before);
  });

  it('rejects listen() on a port in use with a typed BIND_FAILED error', async () => {
    const other = new SmtpForwarder({ domain: 'fwd.test', resolver: staticResolver({}) });
    const error: unknown = await other.listen({ port, host: '127.0.0.1' }).catch((e: unknown) => e);
    expect(SmtpForwardError.isInstance(error)).toBe(true);
    expect((error as SmtpForwardError).code).toBe('BIND_FAILED');
    await other.close();
  });

  it('accepts a burst from Postfix smtp-source and forwards every message', async () => {
    const before = instance.stats().forwarded;
    const result = await run('/usr/sbin/smtp-source', [
      '-c',
      '-m',
      '40',
      '-s',
      '4',
      '-l',
      '2048',
      '-f',
      'load@origin.test',
      '-t',
      'alice@fwd.test',
      `127.0.0.1:${port}`,
    ]);
    expect(result.code).toBe(0);
    expect(instance.stats().forwarded - before).toBe(40);
  });
});

describe('relay failover', () => {
  it('skips an unreachable relay and one that defers, and delivers at the next', async () => {
    const dead = await deadRelay();
    const deferring = await relay({ rcpt: () => 451 });
    const good = await relay();
    const { port } = await forwarder([dead, deferring.port, good.port]);
    expect((await swaks(port, 'alice@fwd.test')).code).toBe(0);
    expect(good.messages).toHaveLength(1);
    expect(deferring.messages).toHaveLength(0);
  });

  it('answers 451 when every relay fails temporarily, so the sender retries', async () => {
    const dead = await deadRelay();
    const busy = await relay({ data: () => 452 });
    const { port, forwarder: instance } = await forwarder([dead, busy.port]);
    const deferred: DeliveryEvent[] = [];
    instance.onDeferred((event) => deferred.push(event));
    const client = await RawClient.atData(port);
    expect(await client.send('Subject: x\r\n\r\nx\r\n.\r\n')).toMatch(/^451 4\.4\.0/);
    client.close();
    expect(deferred).toHaveLength(1);
  });

  it('answers 550 when the destination refuses permanently', async () => {
    const refusing = await relay({ rcpt: () => 550 });
    const { port, forwarder: instance } = await forwarder([refusing.port]);
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    await client.send('MAIL FROM:<a@origin.test>\r\n');
    await client.send('RCPT TO:<team@fwd.test>\r\n');
    await client.send('DATA\r\n');
    expect(await client.send('Subject: x\r\n\r\nx\r\n.\r\n')).toMatch(/^550 5\.0\.0/);
    client.close();
    expect(instance.stats().bounced).toBe(1);
  });

  it('retries only the refused destinations at the next relay', async () => {
    const partial = await relay({
      rcpt: (address) => (address.startsWith('bob') ? 451 : undefined),
    });
    const good = await relay();
    const { port } = await forwarder([partial.port, good.port]);
    expect((await swaks(port, 'team@fwd.test')).code).toBe(0);
    expect(partial.messages.flatMap((m) => m.to)).toEqual(['carol@dest.test']);
    expect(good.messages.flatMap((m) => m.to)).toEqual(['bob@dest.test']);
  });
});

describe('protocol extensions and peers', () => {
  it('relays to Postfix smtp-sink', async () => {
    const port = await freePort();
    const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
    const sink = spawn('/usr/sbin/smtp-sink', [...user, `127.0.0.1:${port}`, '64'], {
      stdio: 'ignore',
    });
    try {
      const { forwarder: instance, port: listening } = await forwarder([port]);
      let result = await swaks(listening, 'alice@fwd.test');
      // smtp-sink may need a moment to bind after spawn; swaks then sees 451 and the retry passes.
      for (let attempt = 0; attempt < 20 && result.code !== 0; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        result = await swaks(listening, 'alice@fwd.test');
      }
      expect(result.code).toBe(0);
      expect(instance.stats().forwarded).toBe(1);
    } finally {
      sink.kill();
    }
  });

  it('handles PIPELINING, SMTPUTF8 and 8BITMIME, relaying 8-bit bytes untouched', async () => {
    const sink = await relay();
    const { port } = await forwarder([sink.port]);
    const client = await RawClient.open(port);
    const ehlo = await client.send('EHLO x.test\r\n');
    expect(ehlo).toMatch(/PIPELINING/);
    expect(ehlo).toMatch(/8BITMIME/);
    expect(ehlo).toMatch(/SMTPUTF8/);
    const utf8 = Buffer.from(
      'MAIL FROM:<jürgen@origin.test> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<alice@fwd.test>\r\nDATA\r\n',
      'utf8',
    );
    client.write(utf8);
    expect(await client.reply()).toMatch(/^250/);
    expect(await client.reply()).toMatch(/^250/);
    expect(await client.reply()).toMatch(/^354/);
    client.write(Buffer.from('Subject: Grüße\r\n\r\nMit freundlichen Grüßen\r\n.\r\n', 'utf8'));
    expect(await client.reply()).toMatch(/^250/);
    client.close();
    const message = sink.messages.at(-1)!;
    expect(message.data.toString('utf8')).toContain('Mit freundlichen Grüßen');
    expect(message.from).toMatch(/=jürgen@fwd\.test$/);
  });

  it('closes a DATA transfer that outlives dataTimeoutMs with 421', async () => {
    const sink = await relay();
    const { forwarder: instance, port } = await forwarder([sink.port], {
      limits: { dataTimeoutMs: 100 },
    });
    const rejected: RejectedEvent[] = [];
    instance.onRejected((event) => rejected.push(event));
    const client = await RawClient.atData(port);
    client.write('Subject: slow\r\n\r\nnever finished');
    expect(await client.reply()).toMatch(/^421 4\.4\.2/);
    client.close();
    expect(sink.messages).toHaveLength(0);
  });
});
