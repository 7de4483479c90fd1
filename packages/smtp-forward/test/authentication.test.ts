import { createHash, sign, verify } from 'node:crypto';
import { authenticate, dkimSign } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpForwarder, staticResolver } from '../src/index.js';
import { relaxedHeader } from '../src/dkim.js';
import { decodeWords } from '../src/headers.js';
import type { SmtpForwarderOptions } from '../src/index.js';
import { asReceiver, dkimKey, testDns } from './dns.js';
import { RawClient, startRelay } from './helpers.js';
import type { TestRelay } from './helpers.js';

const origin = dkimKey('rsa');
const forwardRsa = dkimKey('rsa');
const forwardEd = dkimKey('ed25519');
const arcKey = dkimKey('rsa');
const otherArc = dkimKey('rsa');

const dns = testDns({
  'TXT orig._domainkey.origin.test': origin.record,
  'TXT rsa._domainkey.fwd.test': forwardRsa.record,
  'TXT ed._domainkey.fwd.test': forwardEd.record,
  'TXT arc._domainkey.fwd.test': arcKey.record,
  'TXT arc._domainkey.other.test': otherArc.record,
  'TXT origin.test': 'v=spf1 ip4:127.0.0.1 -all',
  'TXT fwd.test': 'v=spf1 ip4:127.0.0.1 -all',
  'TXT _dmarc.origin.test': 'v=DMARC1; p=reject',
  'TXT _dmarc.fwd.test': 'v=DMARC1; p=reject',
  'TXT _dmarc.relaxed.test': 'v=DMARC1; p=none',
});

const relays: TestRelay[] = [];
const forwarders: SmtpForwarder[] = [];

async function start(
  options: Partial<SmtpForwarderOptions>,
  withAuthentication = true,
): Promise<{ port: number; relay: TestRelay; forwarder: SmtpForwarder }> {
  const relay = await startRelay();
  relays.push(relay);
  const forwarder = new SmtpForwarder({
    domain: 'fwd.test',
    resolver: staticResolver({ 'alice@fwd.test': 'alice@dest.test' }),
    transport: { relays: [{ host: '127.0.0.1', port: relay.port }] },
    srs: { secrets: ['auth-test-secret-0123456789'] },
    ...(withAuthentication ? { authentication: { dnsResolver: dns } } : {}),
    ...options,
  });
  forwarders.push(forwarder);
  const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
  return { port, relay, forwarder };
}

async function signedOriginal(from = 'Alice Sender <sender@origin.test>'): Promise<string> {
  const message = `From: ${from}\r\nTo: alice@fwd.test\r\nSubject: DMARC test\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@origin.test>\r\n\r\nHello through the forwarder.\r\n`;
  const { signatures } = await dkimSign(message, {
    signingDomain: 'origin.test',
    selector: 'orig',
    privateKey: origin.privateKey,
    signatureData: [
      {
        signingDomain: 'origin.test',
        selector: 'orig',
        privateKey: origin.privateKey,
        canonicalization: 'relaxed/relaxed',
      },
    ],
  });
  return signatures + message;
}

async function send(
  port: number,
  message: string,
  sender = 'sender@origin.test',
  recipient = 'alice@fwd.test',
): Promise<string> {
  const client = await RawClient.open(port);
  await client.send('EHLO mx.origin.test\r\n');
  await client.send(`MAIL FROM:<${sender}>\r\n`);
  await client.send(`RCPT TO:<${recipient}>\r\n`);
  await client.send('DATA\r\n');
  const reply = await client.send(`${message.replace(/^\./gm, '..')}.\r\n`);
  client.close();
  return reply;
}

afterAll(async () => {
  await Promise.all(forwarders.map((f) => f.close({ timeoutMs: 200 })));
  await Promise.all(relays.map((r) => r.close()));
});

describe('DMARC survival, DKIM and ARC, verified by mailauth as the receiver', () => {
  let rewritten: Awaited<ReturnType<typeof start>>;

  beforeAll(async () => {
    rewritten = await start({
      dkim: { selector: 'rsa', privateKey: forwardRsa.privateKey },
      arc: { selector: 'arc', privateKey: arcKey.privateKey },
      fromRewrite: 'dmarc-strict',
    });
  });

  it('rewrites From for a p=reject sender and passes DKIM (aligned), SPF (SRS) and DMARC at the receiver, with a valid ARC chain', async () => {
    expect(await send(rewritten.port, await signedOriginal())).toMatch(/^250/);
    const text = rewritten.relay.messages.at(-1)!.data.toString();
    expect(text).toMatch(/^DKIM-Signature: .*d=fwd\.test/m);
    expect(text).toContain('From: "Alice Sender via alice" <alice@fwd.test>');
    expect(text).toContain('Reply-To: Alice Sender <sender@origin.test>');
    expect(text).toContain('X-Original-From: Alice Sender <sender@origin.test>');
    expect(text).toMatch(/^Authentication-Results: fwd\.test;[\s\S]*dkim=pass[\s\S]*dmarc=pass/m);
    const verdict = await asReceiver(rewritten.relay.messages.at(-1)!, dns);
    expect(verdict.spf && verdict.spf.status.result).toBe('pass');
    expect(verdict.spf && verdict.spf.domain).toBe('fwd.test');
    const ours = verdict.dkim.results.find((r) => r.signingDomain === 'fwd.test');
    expect(ours?.status.result).toBe('pass');
    expect(verdict.dmarc && verdict.dmarc.status.result).toBe('pass');
    expect(verdict.arc && verdict.arc.status.result).toBe('pass');
  });

  it('keeps From for a p=none sender, and the original DKIM signature still verifies after forwarding', async () => {
    expect(
      await send(
        rewritten.port,
        await signedOriginal('Relaxed <someone@relaxed.test>'),
        'someone@relaxed.test',
      ),
    ).toMatch(/^250/);
    const text = rewritten.relay.messages.at(-1)!.data.toString();
    expect(text).toContain('From: Relaxed <someone@relaxed.test>');
    expect(text).not.toContain('X-Original-From');
    const verdict = await asReceiver(rewritten.relay.messages.at(-1)!, dns);
    const original = verdict.dkim.results.find((r) => r.signingDomain === 'origin.test');
    expect(original?.status.result).toBe('pass');
    expect(verdict.arc && verdict.arc.status.result).toBe('pass');
  });

  it('extends an existing ARC chain: a forward of a forward carries a valid i=2 set', async () => {
    const second = await start({
      resolver: staticResolver({ 'alice@dest.test': 'final@dest2.test' }),
      arc: { selector: 'arc', privateKey: arcKey.privateKey },
      dkim: { selector: 'rsa', privateKey: forwardRsa.privateKey },
      fromRewrite: 'never',
    });
    const first = new SmtpForwarder({
      domain: 'fwd.test',
      resolver: staticResolver({ 'alice@fwd.test': 'alice@dest.test' }),
      transport: { relays: [{ host: '127.0.0.1', port: second.port }] },
      srs: { secrets: ['auth-test-secret-0123456789'] },
      authentication: { dnsResolver: dns },
      arc: { selector: 'arc', privateKey: arcKey.privateKey },
      fromRewrite: 'never',
    });
    forwarders.push(first);
    const { port } = await first.listen({ port: 0, host: '127.0.0.1' });
    expect(
      await send(
        port,
        await signedOriginal('Relaxed <someone@relaxed.test>'),
        'someone@relaxed.test',
      ),
    ).toMatch(/^250/);
    const text = second.relay.messages.at(-1)!.data.toString();
    expect(text).toMatch(/^ARC-Seal: i=2; .*cv=pass/m);
    expect(text).toMatch(/^ARC-Seal: i=1; .*cv=none/m);
    const verdict = await asReceiver(second.relay.messages.at(-1)!, dns);
    expect(verdict.arc && verdict.arc.status.result).toBe('pass');
    expect(verdict.arc && verdict.arc.i).toBe(2);
  });

  it('seals a chain that no longer validates with cv=fail over its own set only, and a failed chain no further', async () => {
    // Hop 1 seals i=1 (cv=none); the body is then changed, so the chain fails at hop 2.
    expect(
      await send(
        rewritten.port,
        await signedOriginal('Relaxed <someone@relaxed.test>'),
        'someone@relaxed.test',
      ),
    ).toMatch(/^250/);
    const tampered = rewritten.relay.messages
      .at(-1)!
      .data.toString()
      .replace('Hello through the forwarder.', 'Hello, changed on the way.');
    // Later hops forward other aliases: the first hop's Delivered-To would be a loop for its own.
    const second = await start({
      resolver: staticResolver({ 'bob@fwd.test': 'bob@dest.test' }),
      arc: { selector: 'arc', privateKey: otherArc.privateKey, domain: 'other.test' },
      fromRewrite: 'never',
    });
    expect(await send(second.port, tampered, 'someone@relaxed.test', 'bob@fwd.test')).toMatch(
      /^250/,
    );
    const relayed = second.relay.messages.at(-1)!.data.toString();
    const fields = relayed.slice(0, relayed.indexOf('\r\n\r\n') + 2).split(/\r\n(?![ \t])/);
    const ours = (name: string): string =>
      fields.find((f) => new RegExp(`^${name}:\\s*i=2;`, 'i').test(f))!;
    const seal = ours('ARC-Seal');
    expect(seal).toMatch(/cv=fail/);
    // The seal verifies over the new set alone (RFC 8617 5.1.2), not over the broken chain.
    const unsigned = seal.replace(/b=[^;]*$/, 'b=');
    const signed = [ours('ARC-Authentication-Results'), ours('ARC-Message-Signature'), unsigned]
      .map((field, i) => `${relaxedHeader(field)}${i < 2 ? '\r\n' : ''}`)
      .join('');
    const b = /b=([^;]*)$/.exec(seal)![1]!.replace(/\s+/g, '');
    expect(
      verify(
        'sha256',
        Buffer.from(signed, 'latin1'),
        otherArc.privateKey,
        Buffer.from(b, 'base64'),
      ),
    ).toBe(true);
    // A third hop sees the cv=fail seal and adds no set.
    const third = await start({
      resolver: staticResolver({ 'carol@fwd.test': 'carol@dest.test' }),
      arc: { selector: 'arc', privateKey: arcKey.privateKey },
      fromRewrite: 'never',
    });
    expect(await send(third.port, relayed, 'someone@relaxed.test', 'carol@fwd.test')).toMatch(
      /^250/,
    );
    expect(third.relay.messages.at(-1)!.data.toString()).not.toMatch(/^ARC-Seal: i=3/m);
  });

  it('signs with Ed25519 and always rewrites when asked', async () => {
    const ed = await start({
      dkim: { selector: 'ed', privateKey: forwardEd.privateKey },
      fromRewrite: 'always',
    });
    expect(
      await send(
        ed.port,
        await signedOriginal('Relaxed <someone@relaxed.test>'),
        'someone@relaxed.test',
      ),
    ).toMatch(/^250/);
    const text = ed.relay.messages.at(-1)!.data.toString();
    expect(text).toMatch(/a=ed25519-sha256/);
    expect(text).toContain('<alice@fwd.test>');
    const verdict = await asReceiver(ed.relay.messages.at(-1)!, dns);
    expect(verdict.dkim.results.find((r) => r.signingDomain === 'fwd.test')?.status.result).toBe(
      'pass',
    );
    expect(verdict.dmarc && verdict.dmarc.status.result).toBe('pass');
  });

  it('refuses a DMARC p=reject failure when rejectDmarcFailures is set', async () => {
    const strict = await start({ authentication: { dnsResolver: dns, rejectDmarcFailures: true } });
    const forged = 'From: sender@origin.test\r\nSubject: forged\r\n\r\nnot signed\r\n';
    expect(await send(strict.port, forged, 'attacker@elsewhere.test')).toMatch(/^550 5\.7\.1/);
    expect(strict.relay.messages).toHaveLength(0);
  });

  it('looks up the DMARC policy itself when inbound authentication is off', async () => {
    const plain = await start({ dnsResolver: dns, fromRewrite: 'dmarc-strict' }, false);
    expect(
      await send(plain.port, 'From: "Bob" <bob@sub.origin.test>\r\nSubject: x\r\n\r\nbody\r\n'),
    ).toMatch(/^250/);
    expect(plain.relay.messages.at(-1)!.data.toString()).toContain(
      'From: "Bob via alice" <alice@fwd.test>',
    );
  });

  it('reads the From mailbox as RFC 5322 does: never an address in a quoted name or a comment, names in UTF-8 or encoded-words', async () => {
    const plain = await start({ dnsResolver: dns, fromRewrite: 'dmarc-strict' }, false);
    const rewrittenFrom = async (from: string): Promise<string | undefined> => {
      expect(await send(plain.port, `From: ${from}\r\nSubject: x\r\n\r\nbody\r\n`)).toMatch(/^250/);
      const text = plain.relay.messages.at(-1)!.data.toString('utf8');
      return /^From: (.*)\r$/m.exec(text.replace(/\r\n(?=[ \t])/g, ''))?.[1];
    };
    // origin.test publishes p=reject, relaxed.test p=none: the policy is origin.test's.
    expect(await rewrittenFrom('"Support <help@relaxed.test>" <sender@origin.test>')).toBe(
      '"Support <help@relaxed.test> via alice" <alice@fwd.test>',
    );
    expect(await rewrittenFrom('sender@origin.test (was <help@relaxed.test>)')).toBe(
      '"was <help@relaxed.test> via alice" <alice@fwd.test>',
    );
    const utf8 = await rewrittenFrom(
      Buffer.from('Jürgen Müller <sender@origin.test>').toString('latin1'),
    );
    expect(utf8).toMatch(/^=\?UTF-8\?B\?.*\?= <alice@fwd\.test>$/);
    expect(decodeWords(utf8!.slice(0, utf8!.lastIndexOf(' <')))).toBe('Jürgen Müller via alice');
    const encoded = await rewrittenFrom('=?utf-8?q?J=C3=BCrgen?= <sender@origin.test>');
    expect(decodeWords(encoded!.slice(0, encoded!.lastIndexOf(' <')))).toBe('Jürgen via alice');
  });

  it('answers 451 when inbound checks outlive their timeout (a DNS that never answers)', async () => {
    const hanging = await start({
      authentication: { dnsResolver: () => new Promise<never>(() => undefined), timeoutMs: 50 },
    });
    expect(await send(hanging.port, await signedOriginal())).toMatch(/^451 4\.4\.3/);
    expect(hanging.relay.messages).toHaveLength(0);
  });

  it('refuses an ARC key without inbound authentication', () => {
    expect(
      () =>
        new SmtpForwarder({
          domain: 'fwd.test',
          resolver: staticResolver({}),
          arc: { selector: 'a', privateKey: arcKey.privateKey },
        }),
    ).toThrow(/arc needs authentication/);
  });
});

describe('text from the envelope in the header fields we write', () => {
  it('cannot end a line: characters whose low byte is CR, LF or a colon stay UTF-8 in Authentication-Results, the ARC set and Received', async () => {
    const { port, relay } = await start({
      resolver: staticResolver({ '*@fwd.test': 'alice@dest.test' }),
      dkim: { selector: 'rsa', privateKey: forwardRsa.privateKey },
      arc: { selector: 'arc', privateKey: arcKey.privateKey },
      fromRewrite: 'never',
    });
    // U+010D, U+010A, U+013A and U+0120 are stored as 0x10D, 0x10A, 0x13A and 0x120: their low
    // bytes are CR, LF, ':' and a space, all a header needs to start a field of its own.
    const forged = 'x\u010d\u010aSubject\u013a\u0120URGENT';
    // RawClient writes one byte per character: hand it the UTF-8 bytes.
    const utf8 = (line: string): string => Buffer.from(line, 'utf8').toString('latin1');
    const client = await RawClient.open(port);
    await client.send('EHLO mx.origin.test\r\n');
    expect(await client.send(utf8(`MAIL FROM:<${forged}@origin.test> SMTPUTF8\r\n`))).toMatch(
      /^250/,
    );
    expect(await client.send(utf8(`RCPT TO:<${forged}@fwd.test>\r\n`))).toMatch(/^250/);
    await client.send('DATA\r\n');
    const body = 'From: Someone <someone@relaxed.test>\r\nSubject: harmless\r\n\r\nHello.\r\n.\r\n';
    expect(await client.send(body)).toMatch(/^250/);
    client.close();
    const relayed = relay.messages.at(-1)!;
    const header = relayed.data.subarray(0, relayed.data.indexOf('\r\n\r\n') + 2);
    const bytes = header.toString('latin1');
    expect(bytes.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(bytes.match(/^Subject:/gim)).toEqual(['Subject:']);
    // Unfolded: our fields are folded at spaces.
    const text = header.toString('utf8').replace(/\r\n(?=[ \t])/g, '');
    expect(text).toMatch(
      new RegExp(`^Authentication-Results: .*smtp\\.mailfrom="${forged}@origin\\.test"`, 'm'),
    );
    expect(text).toMatch(
      new RegExp(
        `^ARC-Authentication-Results: i=1; .*smtp\\.mailfrom="${forged}@origin\\.test"`,
        'm',
      ),
    );
    expect(text).toContain(`for <${forged}@fwd.test>`);
    expect(Buffer.from(header.toString('utf8'), 'utf8').equals(header)).toBe(true);
    const verdict = await asReceiver(relayed, dns);
    expect(verdict.dkim.results.find((r) => r.signingDomain === 'fwd.test')?.status.result).toBe(
      'pass',
    );
  });

  it('refuses non-ASCII addresses in a transaction that did not announce SMTPUTF8 (RFC 6531)', async () => {
    const { port, relay } = await start({
      resolver: staticResolver({ '*@fwd.test': 'alice@dest.test' }),
    });
    const utf8 = (line: string): string => Buffer.from(line, 'utf8').toString('latin1');
    const client = await RawClient.open(port);
    await client.send('EHLO mx.origin.test\r\n');
    expect(await client.send(utf8('MAIL FROM:<j\u00fcrgen@origin.test>\r\n'))).toMatch(
      /^553 5\.6\.7/,
    );
    expect(await client.send('MAIL FROM:<sender@origin.test>\r\n')).toMatch(/^250/);
    expect(await client.send(utf8('RCPT TO:<j\u00fcrgen@fwd.test>\r\n'))).toMatch(/^553 5\.6\.7/);
    expect(await client.send('RSET\r\n')).toMatch(/^250/);
    expect(await client.send(utf8('MAIL FROM:<j\u00fcrgen@origin.test> SMTPUTF8\r\n'))).toMatch(
      /^250/,
    );
    expect(await client.send(utf8('RCPT TO:<j\u00fcrgen@fwd.test>\r\n'))).toMatch(/^250/);
    client.close();
    expect(relay.messages).toHaveLength(0);
  });

  it('takes IDN domains written as A-labels without SMTPUTF8, whichever form the alias map uses', async () => {
    const { port } = await start({
      resolver: staticResolver({
        'info@xn--mnchen-3ya.test': 'a@dest.test',
        'post@k\u00f6ln.test': 'b@dest.test',
      }),
    });
    const client = await RawClient.open(port);
    await client.send('EHLO mx.origin.test\r\n');
    // smtp-server hands the forwarder these domains in Unicode; on the wire they are ASCII.
    expect(await client.send('MAIL FROM:<hans@xn--mnchen-3ya.de>\r\n')).toMatch(/^250/);
    expect(await client.send('RCPT TO:<info@xn--mnchen-3ya.test>\r\n')).toMatch(/^250/);
    expect(await client.send('RCPT TO:<post@xn--kln-sna.test>\r\n')).toMatch(/^250/);
    client.close();
  });
});

describe('ARC chains from other forwarders, and what a replay may add', () => {
  let forwarder: Awaited<ReturnType<typeof start>>;

  beforeAll(async () => {
    forwarder = await start({
      dkim: { selector: 'rsa', privateKey: forwardRsa.privateKey },
      arc: { selector: 'arc', privateKey: arcKey.privateKey },
      fromRewrite: 'dmarc-strict',
    });
  });

  /** `message` after `sets` forwards through other.test, each sealing with mailauth's own sealer. */
  async function sealedBy(message: string, sets: number): Promise<string> {
    let sealed = message;
    for (let i = 0; i < sets; i += 1) {
      const result = await authenticate(Buffer.from(sealed), {
        ip: '127.0.0.1',
        helo: 'mx.relaxed.test',
        sender: 'someone@relaxed.test',
        mta: 'other.test',
        resolver: dns,
        disableBimi: true,
        seal: { signingDomain: 'other.test', selector: 'arc', privateKey: otherArc.privateKey },
      });
      const arcFields = result.headers.split(/\r\n(?![ \t])/).filter((h) => /^ARC-/i.test(h));
      sealed = `${arcFields.join('\r\n')}\r\n${sealed}`;
    }
    return sealed;
  }

  it('adds no 51st ARC set to a chain that already holds the 50 RFC 8617 allows, and the chain stays valid', async () => {
    const inbound = await sealedBy(await signedOriginal('Rel <someone@relaxed.test>'), 50);
    expect(await send(forwarder.port, inbound, 'someone@relaxed.test')).toMatch(/^250/);
    const relayed = forwarder.relay.messages.at(-1)!;
    expect(relayed.data.toString()).not.toMatch(/^ARC-Seal: i=51/m);
    const verdict = await asReceiver(relayed, dns);
    expect(verdict.arc && [verdict.arc.status.result, verdict.arc.i]).toEqual(['pass', 50]);
    expect(verdict.dkim.results.find((r) => r.signingDomain === 'fwd.test')?.status.result).toBe(
      'pass',
    );
  });

  it('seals over an inbound ARC set whose i= tag is not the first tag', async () => {
    const relaxed = (field: string): string => {
      const colon = field.indexOf(':');
      const value = field.slice(colon + 1).replace(/\r\n(?=[ \t])/g, '');
      return `${field.slice(0, colon).trim().toLowerCase()}:${value.replace(/[ \t]+/g, ' ').trim()}`;
    };
    const rsa = (data: string): string =>
      sign('sha256', Buffer.from(data), otherArc.privateKey).toString('base64');
    const base = await signedOriginal('Rel <someone@relaxed.test>');
    const split = base.indexOf('\r\n\r\n');
    const fields = base.slice(0, split + 2).split(/\r\n(?![ \t])/);
    const field = (name: string): string =>
      fields.find((f) => f.toLowerCase().startsWith(`${name}:`))!;
    const bodyHash = createHash('sha256')
      .update(base.slice(split + 4))
      .digest('base64');
    const t = Math.floor(Date.now() / 1000);
    const aar =
      'ARC-Authentication-Results: i=1; other.test; spf=pass smtp.mailfrom=someone@relaxed.test';
    const amsHead = `ARC-Message-Signature: a=rsa-sha256; c=relaxed/relaxed; d=other.test; s=arc; t=${t}; h=from:to:subject; bh=${bodyHash}; i=1; b=`;
    const signedFields = ['from', 'to', 'subject'].map((name) => `${relaxed(field(name))}\r\n`);
    const ams = amsHead + rsa(signedFields.join('') + relaxed(amsHead));
    const sealHead = `ARC-Seal: a=rsa-sha256; cv=none; d=other.test; s=arc; t=${t}; i=1; b=`;
    const seal = sealHead + rsa(`${relaxed(aar)}\r\n${relaxed(ams)}\r\n${relaxed(sealHead)}`);
    const inbound = `${seal}\r\n${ams}\r\n${aar}\r\n${base}`;
    expect(
      (await asReceiver({ from: 'someone@relaxed.test', data: Buffer.from(inbound) }, dns)).arc,
    ).toMatchObject({ status: { result: 'pass' }, i: 1 });

    expect(await send(forwarder.port, inbound, 'someone@relaxed.test')).toMatch(/^250/);
    const verdict = await asReceiver(forwarder.relay.messages.at(-1)!, dns);
    expect(verdict.arc && [verdict.arc.status.result, verdict.arc.i]).toEqual(['pass', 2]);
  });

  it('oversigns: a Subject, Reply-To, To or List-Unsubscribe added to a forwarded message breaks our signature', async () => {
    expect(await send(forwarder.port, await signedOriginal())).toMatch(/^250/);
    const relayed = forwarder.relay.messages.at(-1)!;
    const ours = async (data: Buffer): Promise<string | undefined> =>
      (await asReceiver({ from: relayed.from, data }, dns)).dkim.results.find(
        (r) => r.signingDomain === 'fwd.test',
      )?.status.result;
    expect(await ours(relayed.data)).toBe('pass');
    for (const added of [
      'Subject: Your account is locked',
      'Reply-To: attacker@evil.test',
      'To: someone-else@dest.test',
      'List-Unsubscribe: <https://evil.test/u>',
    ]) {
      expect(await ours(Buffer.concat([Buffer.from(`${added}\r\n`), relayed.data]))).toBe('fail');
    }
  });

  it('rewrites the first of two From fields and keeps the second only as X-Original-From', async () => {
    const message =
      'From: Alice <sender@origin.test>\r\nFrom: Bob <bob@origin.test>\r\nTo: alice@fwd.test\r\nSubject: two\r\n\r\nHi.\r\n';
    expect(await send(forwarder.port, message)).toMatch(/^250/);
    const header = forwarder.relay.messages.at(-1)!.data.toString().split('\r\n\r\n')[0]!;
    expect(header.match(/^From: .*$/gm)).toEqual(['From: "Alice via alice" <alice@fwd.test>']);
    expect(header.match(/^X-Original-From: .*$/gm)).toEqual([
      'X-Original-From: Alice <sender@origin.test>',
      'X-Original-From: Bob <bob@origin.test>',
    ]);
    expect(header.match(/^Reply-To: .*$/gm)).toEqual(['Reply-To: Alice <sender@origin.test>']);

    // A first From with no address to rewrite still leaves one From.
    const unreadable =
      'From: undisclosed-recipients:;\r\nFrom: Bob <bob@origin.test>\r\nTo: alice@fwd.test\r\nSubject: two\r\n\r\nHi.\r\n';
    expect(await send(forwarder.port, unreadable)).toMatch(/^250/);
    const kept = forwarder.relay.messages.at(-1)!.data.toString().split('\r\n\r\n')[0]!;
    expect(kept.match(/^From: .*$/gm)).toEqual(['From: undisclosed-recipients:;']);
    expect(kept.match(/^X-Original-From: .*$/gm)).toEqual([
      'X-Original-From: Bob <bob@origin.test>',
    ]);
  });
});
