import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalDeliveryQueue,
  SmtpForwarder,
  SmtpForwardError,
  staticResolver,
} from '../src/index.js';
import type { DkimSelectContext } from '../src/index.js';
import { asReceiver, dkimKey, testDns } from './dns.js';
import { RawClient, startRelay } from './helpers.js';
import type { TestRelay } from './helpers.js';

const one = dkimKey('rsa');
const two = dkimKey('ed25519');
const shared = dkimKey('rsa');

const dns = testDns({
  'TXT k1._domainkey.one.test': one.record,
  'TXT k2._domainkey.two.test': two.record,
  'TXT shared._domainkey.fwd.test': shared.record,
  'TXT fwd.test': 'v=spf1 ip4:127.0.0.1 -all',
});

let relay: TestRelay;
let forwarder: SmtpForwarder;
let port = 0;
const asked: DkimSelectContext[] = [];

beforeAll(async () => {
  relay = await startRelay();
  forwarder = new SmtpForwarder({
    domain: 'fwd.test',
    resolver: staticResolver({
      'alice@one.test': 'alice@dest.test',
      'bob@two.test': 'bob@dest.test',
      'carol@three.test': 'carol@dest.test',
    }),
    transport: { relays: [{ host: '127.0.0.1', port: relay.port }] },
    srs: { secrets: ['per-domain-secret-0123456789'] },
    dkim: {
      keys: [{ domain: 'one.test', selector: 'k1', privateKey: one.privateKey }],
      select: (context) => {
        asked.push(context);
        return Promise.resolve(
          context.domain === 'two.test' ? { selector: 'k2', privateKey: two.privateKey } : null,
        );
      },
      fallback: { selector: 'shared', privateKey: shared.privateKey },
    },
    fromRewrite: 'always',
  });
  port = (await forwarder.listen({ port: 0, host: '127.0.0.1' })).port;
});

afterAll(async () => {
  await forwarder.close({ timeoutMs: 200 });
  await relay.close();
});

async function send(to: string): Promise<string> {
  const client = await RawClient.open(port);
  await client.send('EHLO mx.origin.test\r\n');
  await client.send('MAIL FROM:<sender@origin.test>\r\n');
  await client.send(`RCPT TO:<${to}>\r\n`);
  await client.send('DATA\r\n');
  const reply = await client.send(
    `From: Sender <sender@origin.test>\r\nTo: ${to}\r\nSubject: per-domain DKIM\r\nMessage-ID: <${to}@origin.test>\r\n\r\nHello.\r\n.\r\n`,
  );
  client.close();
  return reply;
}

describe('DKIM per alias domain, verified by mailauth as the receiver', () => {
  it('signs mail to an alias of one.test with the listed one.test key, without asking select', async () => {
    expect(await send('alice@one.test')).toMatch(/^250/);
    const verdict = await asReceiver(relay.messages.at(-1)!, dns);
    const results = verdict.dkim.results.map((r) => [r.signingDomain, r.status.result]);
    expect(results).toEqual([['one.test', 'pass']]);
    expect(asked).toHaveLength(0);
  });

  it('signs mail to an alias of two.test with the key select returned (Ed25519), and d=two.test aligns with the rewritten From', async () => {
    expect(await send('bob@two.test')).toMatch(/^250/);
    const text = relay.messages.at(-1)!.data.toString();
    // The rewritten From is at the domain the key signs for, so DMARC aligns on DKIM alone.
    expect(text).toMatch(/^From: "Sender via bob" <bob@two\.test>\r$/m);
    expect(text).toMatch(/a=ed25519-sha256/);
    const verdict = await asReceiver(relay.messages.at(-1)!, dns);
    expect(verdict.dkim.results.map((r) => [r.signingDomain, r.status.result])).toEqual([
      ['two.test', 'pass'],
    ]);
    expect(asked.at(-1)).toMatchObject({ domain: 'two.test', aliases: ['bob@two.test'] });
    // Aligned with the From's domain: DMARC passes on DKIM alone, whatever SPF says after more hops.
    expect(verdict.dkim.results[0]?.status.aligned).toBe('two.test');
  });

  it('signs with the fallback key of the forwarding domain when the alias domain has no key', async () => {
    expect(await send('carol@three.test')).toMatch(/^250/);
    const verdict = await asReceiver(relay.messages.at(-1)!, dns);
    expect(verdict.dkim.results.map((r) => [r.signingDomain, r.status.result])).toEqual([
      ['fwd.test', 'pass'],
    ]);
  });

  it('answers 451 and relays nothing when select fails', async () => {
    const failing = await startRelay();
    const broken = new SmtpForwarder({
      domain: 'fwd.test',
      resolver: staticResolver({ 'bob@two.test': 'bob@dest.test' }),
      transport: { relays: [{ host: '127.0.0.1', port: failing.port }] },
      dkim: { select: () => Promise.reject(new Error('database down')) },
    });
    const { port: brokenPort } = await broken.listen({ port: 0, host: '127.0.0.1' });
    try {
      const client = await RawClient.open(brokenPort);
      await client.send('EHLO mx.origin.test\r\n');
      await client.send('MAIL FROM:<sender@origin.test>\r\n');
      await client.send('RCPT TO:<bob@two.test>\r\n');
      await client.send('DATA\r\n');
      expect(await client.send('Subject: x\r\n\r\nbody\r\n.\r\n')).toMatch(/^451 4\.3\.0/);
      client.close();
      expect(failing.messages).toHaveLength(0);
    } finally {
      await broken.close({ timeoutMs: 200 });
      await failing.close();
    }
  });

  it('signs the DSN of a bounce with the forwarding domain key, which mailauth verifies', async () => {
    const refusing = await startRelay({
      rcpt: (address) => (address === 'alice@dest.test' ? 550 : undefined),
    });
    const dir = mkdtempSync(join(tmpdir(), 'postern-dsn-dkim-'));
    const queue = new LocalDeliveryQueue();
    const bouncing = new SmtpForwarder({
      domain: 'fwd.test',
      resolver: staticResolver({ 'alice@one.test': 'alice@dest.test' }),
      transport: { relays: [{ host: '127.0.0.1', port: refusing.port }] },
      delivery: { mode: 'queued', queue, spoolDir: dir },
      srs: { secrets: ['per-domain-secret-0123456789'] },
      dkim: {
        keys: [{ domain: 'one.test', selector: 'k1', privateKey: one.privateKey }],
        fallback: { selector: 'shared', privateKey: shared.privateKey },
      },
    });
    queue.process((job, info) => bouncing.deliverQueued(job, info));
    const { port: bouncingPort } = await bouncing.listen({ port: 0, host: '127.0.0.1' });
    try {
      const client = await RawClient.open(bouncingPort);
      await client.send('EHLO mx.origin.test\r\n');
      await client.send('MAIL FROM:<sender@origin.test>\r\n');
      await client.send('RCPT TO:<alice@one.test>\r\n');
      await client.send('DATA\r\n');
      expect(await client.send('Subject: doomed\r\n\r\nbody\r\n.\r\n')).toMatch(/^250/);
      client.close();
      await queue.onIdle();
      const dsn = refusing.messages.find((m) => m.to.includes('sender@origin.test'));
      expect(dsn?.from).toBe('');
      const verdict = await asReceiver(dsn!, dns);
      expect(verdict.dkim.results.map((r) => [r.signingDomain, r.status.result])).toEqual([
        ['fwd.test', 'pass'],
      ]);
    } finally {
      queue.close();
      await bouncing.close({ timeoutMs: 200 });
      await refusing.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a dkim option with no key, no keys, no select and no fallback', () => {
    expect(
      () => new SmtpForwarder({ domain: 'fwd.test', resolver: staticResolver({}), dkim: {} }),
    ).toThrow(SmtpForwardError);
  });
});
