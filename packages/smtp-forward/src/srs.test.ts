import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SmtpForwardError } from './errors.js';
import { Srs } from './srs.js';

const DAY = 86_400_000;
const secret = 'first-secret-0123456789';
const manual = (start: number) => {
  const clock = { time: start, now: () => clock.time };
  return clock;
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return SmtpForwardError.isInstance(error) ? error.code : 'OTHER';
  }
  return undefined;
}

describe('Srs', () => {
  it('rewrites a sender as SRS0 and reverses it', () => {
    const srs = new Srs({ secrets: [secret], domain: 'fwd.test', clock: manual(100 * DAY) });
    const rewritten = srs.forward('Alice@Origin.test');
    expect(rewritten).toMatch(/^SRS0=[a-z2-7]{8}=[a-z2-7]{2}=origin\.test=Alice@fwd\.test$/);
    expect(srs.reverse(rewritten)).toBe('Alice@origin.test');
  });

  it('accepts a hash in any letter case (MTAs may fold the local part)', () => {
    const srs = new Srs({ secrets: [secret], domain: 'fwd.test', clock: manual(0) });
    expect(
      srs.reverse(srs.forward('bob@origin.test').toUpperCase().replace('@FWD.TEST', '@fwd.test')),
    ).toBe('BOB@origin.test');
  });

  it('keeps senders already in our domain', () => {
    const srs = new Srs({ secrets: [secret], domain: 'fwd.test' });
    expect(srs.forward('me@fwd.test')).toBe('me@fwd.test');
  });

  it('refuses forged hashes and addresses signed with an unknown secret', () => {
    const srs = new Srs({ secrets: [secret], domain: 'fwd.test', clock: manual(0) });
    const other = new Srs({
      secrets: ['another-secret-0123456789'],
      domain: 'fwd.test',
      clock: manual(0),
    });
    const address = other.forward('a@origin.test');
    expect(codeOf(() => srs.reverse(address))).toBe('SRS_FORGED');
    const tampered = srs.forward('a@origin.test').replace('=a@', '=b@');
    expect(codeOf(() => srs.reverse(tampered))).toBe('SRS_FORGED');
  });

  it('expires SRS0 addresses after maxAgeDays, across the 1024-day timestamp wrap', () => {
    const clock = manual(1020 * DAY);
    const srs = new Srs({ secrets: [secret], domain: 'fwd.test', maxAgeDays: 5, clock });
    const address = srs.forward('a@origin.test');
    clock.time += 5 * DAY;
    expect(srs.reverse(address)).toBe('a@origin.test');
    clock.time += DAY;
    expect(codeOf(() => srs.reverse(address))).toBe('SRS_EXPIRED');
  });

  it('signs a repeated sender the same way within a day and anew the next day, past its cache size', () => {
    const clock = manual(300 * DAY);
    const srs = new Srs({ secrets: [secret], domain: 'fwd.test', clock });
    const fresh = (sender: string) =>
      new Srs({ secrets: [secret], domain: 'fwd.test', clock }).forward(sender);
    const first = srs.forward('a@origin.test');
    // More distinct senders than the cache holds: the oldest entries go, answers stay right.
    for (let i = 0; i < 1500; i += 1) {
      const sender = `user${i}@origin.test`;
      expect(srs.forward(sender)).toBe(fresh(sender));
    }
    expect(srs.forward('a@origin.test')).toBe(first);
    expect(srs.forward('A@origin.test')).toBe(fresh('A@origin.test'));
    clock.time += DAY;
    const next = srs.forward('a@origin.test');
    expect(next).not.toBe(first);
    expect(next).toBe(fresh('a@origin.test'));
    expect(srs.reverse(next)).toBe('a@origin.test');
    expect(srs.forward('SRS0=abcd=ef=x.test=u@hop.test')).toBe(
      fresh('SRS0=abcd=ef=x.test=u@hop.test'),
    );
  });

  it('rotates keys: signs with the newest secret, accepts any configured', () => {
    const old = new Srs({ secrets: [secret], domain: 'fwd.test', clock: manual(0) });
    const rotated = new Srs({
      secrets: ['second-secret-0123456789', secret],
      domain: 'fwd.test',
      clock: manual(0),
    });
    const issued = old.forward('a@origin.test');
    expect(rotated.reverse(issued)).toBe('a@origin.test');
    expect(codeOf(() => old.reverse(rotated.forward('a@origin.test')))).toBe('SRS_FORGED');
  });

  it('rewrites another forwarder SRS0 as SRS1 and reverses it to the hop', () => {
    const hop = new Srs({
      secrets: ['hop-secret-0123456789abc'],
      domain: 'hop1.test',
      clock: manual(0),
    });
    const us = new Srs({ secrets: [secret], domain: 'fwd.test', clock: manual(0) });
    const srs0 = hop.forward('a@origin.test');
    const srs1 = us.forward(srs0);
    expect(srs1).toMatch(/^SRS1=[a-z2-7]{8}=hop1\.test==/);
    expect(us.reverse(srs1)).toBe(srs0);
    expect(hop.reverse(us.reverse(srs1))).toBe('a@origin.test');
    // A third hop keeps the first hop, so the address does not grow.
    const third = new Srs({
      secrets: ['third-secret-0123456789ab'],
      domain: 'hop3.test',
      clock: manual(0),
    });
    const again = third.forward(srs1);
    expect(again).toMatch(/^SRS1=[a-z2-7]{8}=hop1\.test==/);
    expect(third.reverse(again)).toBe(srs0);
    expect(codeOf(() => us.reverse(srs1.replace(/^SRS1=[a-z2-7]{8}/, 'SRS1=aaaaaaaa')))).toBe(
      'SRS_FORGED',
    );
  });

  it('refuses malformed input and weak options', () => {
    const srs = new Srs({ secrets: [secret], domain: 'fwd.test' });
    expect(codeOf(() => srs.reverse('SRS0=x@other.test'))).toBe('SRS_INVALID');
    expect(codeOf(() => srs.reverse('SRS0=broken@fwd.test'))).toBe('SRS_INVALID');
    expect(codeOf(() => srs.forward('not an address'))).toBe('SRS_INVALID');
    expect(codeOf(() => srs.forward('SRS1=bad@hop.test'))).toBe('SRS_INVALID');
    expect(codeOf(() => new Srs({ secrets: [], domain: 'fwd.test' }))).toBe('INVALID_OPTIONS');
    expect(codeOf(() => new Srs({ secrets: ['short'], domain: 'fwd.test' }))).toBe(
      'INVALID_OPTIONS',
    );
    expect(codeOf(() => new Srs({ secrets: [secret], domain: 'fwd.test', hashLength: 2 }))).toBe(
      'INVALID_OPTIONS',
    );
    expect(Srs.isSrs('SRS0=a=b=c=d')).toBe(true);
    expect(Srs.isSrs('srs1+x')).toBe(true);
    expect(Srs.isSrs('alice')).toBe(false);
  });

  it('interoperates with postsrsd: same addresses, both directions (vectors made by postsrsd 1.10)', () => {
    // Produced on 2026-11-24 by `postsrsd -s<file> -dfwd.test` with the secret below (Debian 1.10-2).
    const srs = new Srs({
      secrets: ['interop-secret-0123456789'],
      domain: 'fwd.test',
      scheme: 'postsrsd',
      clock: manual(Date.UTC(2026, 10, 24, 12)),
    });
    expect(srs.forward('alice@origin.test')).toBe('SRS0=VivB=JN=origin.test=alice@fwd.test');
    expect(srs.forward('SRS0=abcd=xy=first.test=bob@hop.test')).toBe(
      'SRS1=0tC4=hop.test==abcd=xy=first.test=bob@fwd.test',
    );
    expect(srs.forward('SRS1=zzzz=first.test==abcd=xy=orig.test=u@hop2.test')).toBe(
      'SRS1=Frij=first.test==abcd=xy=orig.test=u@fwd.test',
    );
    // Addresses postsrsd wrote are accepted by ours (the domain's case differs, the hash does not).
    expect(srs.reverse('SRS0=73Hw=JN=Example.ORG=Bob.Smith+tag@fwd.test')).toBe(
      'Bob.Smith+tag@example.org',
    );
    expect(srs.reverse('SRS1=0tC4=hop.test==abcd=xy=first.test=bob@fwd.test')).toBe(
      'SRS0=abcd=xy=first.test=bob@hop.test',
    );
    expect(codeOf(() => srs.reverse('SRS0=VivC=JN=origin.test=alice@fwd.test'))).toBe('SRS_FORGED');
    // The two schemes never accept each other's hashes.
    const native = new Srs({
      secrets: ['interop-secret-0123456789'],
      domain: 'fwd.test',
      clock: manual(Date.UTC(2026, 10, 24, 12)),
    });
    expect(codeOf(() => native.reverse('SRS0=VivB=JN=origin.test=alice@fwd.test'))).toBe(
      'SRS_FORGED',
    );
  });

  it('round-trips any valid sender (property)', () => {
    const srs = new Srs({ secrets: [secret], domain: 'fwd.test', clock: manual(42 * DAY) });
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9._+-]{1,40}$/), fc.domain(), (local, domain) => {
        const sender = `${local}@${domain}`;
        expect(srs.reverse(srs.forward(sender))).toBe(
          sender.toLowerCase() === sender ? sender : `${local}@${domain.toLowerCase()}`,
        );
      }),
    );
  });
});
