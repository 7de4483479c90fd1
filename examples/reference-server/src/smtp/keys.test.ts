import { describe, expect, it } from 'vitest';
import { normalisedSmtpLimiter, reasonLabel, senderRateKey } from './keys.js';

describe('senderRateKey', () => {
  it('folds case, +tags and SRS0/SRS1 wrapping into the one sender', () => {
    expect(senderRateKey('Me+News@Example.ORG')).toBe('me@example.org');
    expect(senderRateKey('SRS0=HHH=TT=example.org=me+x@fwd.test')).toBe('me@example.org');
    expect(senderRateKey('SRS1=HHH=fwd1.test==HHH=TT=example.org=me@fwd2.test')).toBe(
      'me@example.org',
    );
    expect(senderRateKey('srs0=broken@fwd.test')).toBe('srs0=broken@fwd.test');
    expect(senderRateKey('+tag@example.org')).toBe('+tag@example.org');
  });

  it('rewrites only sender keys', async () => {
    const keys: string[] = [];
    const limiter = normalisedSmtpLimiter({
      consume: (key) => (keys.push(key), Promise.resolve({ allowed: true, retryAfterMs: 0 })),
    });
    await limiter.consume('ip:127.0.0.1');
    await limiter.consume('sender:A+b@X.test');
    expect(keys).toEqual(['ip:127.0.0.1', 'sender:a@x.test']);
  });
});

describe('reasonLabel', () => {
  it('keeps the status code only', () => {
    expect(reasonLabel('450 4.2.1 <p***@dest.test>: mailbox unavailable')).toBe('4.2.1');
    expect(reasonLabel('4.7.0 Rate limit reached, try again in 17s')).toBe('4.7.0');
    expect(reasonLabel('421 too busy, queue id 8F3A')).toBe('421');
    expect(reasonLabel('ECONNREFUSED 10.0.0.1:25')).toBe('other');
  });
});
