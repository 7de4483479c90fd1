import { describe, expect, it } from 'vitest';
import { buildDsn } from './dsn.js';

const dsn = (diagnostic: string) =>
  buildDsn({
    domain: 'fwd.test',
    hostname: 'mx.fwd.test',
    to: 'sender@origin.test',
    failed: [{ recipient: 'alice@fwd.test', status: '5.1.1', diagnostic }],
    originalHeaders: Buffer.from('From: sender@origin.test\r\nSubject: hi\r\n'),
    now: new Date(Date.UTC(2026, 10, 23, 10, 0, 0)),
  }).toString('utf8');

describe('buildDsn: an RFC 3464 bounce that never names the private destination', () => {
  it('is a multipart/report from MAILER-DAEMON naming the alias, with the original headers', () => {
    const text = dsn('550 5.1.1 mailbox unavailable');
    expect(text).toContain('From: Mail Delivery System <MAILER-DAEMON@fwd.test>');
    expect(text).toContain('To: <sender@origin.test>');
    expect(text).toContain('Auto-Submitted: auto-replied');
    expect(text).toMatch(
      /Content-Type: multipart\/report; report-type=delivery-status; boundary="(postern-[0-9a-f]{16})"/,
    );
    expect(text).toContain('Reporting-MTA: dns; mx.fwd.test');
    expect(text).toContain('Final-Recipient: rfc822; alice@fwd.test');
    expect(text).toContain('Status: 5.1.1');
    expect(text).toContain('Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0000');
    expect(text).toContain('Subject: hi');
    const boundary = /boundary="([^"]+)"/.exec(text)?.[1] ?? '';
    expect(text.trimEnd().endsWith(`--${boundary}--`)).toBe(true);
  });

  it('redacts every address in the relay answer, folds it onto one line and caps its length', () => {
    const text = dsn(
      `550 5.1.1 <secret.dest@private.test>: no such user\r\nInjected: header ${'x'.repeat(400)}`,
    );
    expect(text).not.toContain('secret.dest@private.test');
    expect(text).toContain(
      'Diagnostic-Code: smtp; 550 5.1.1 <<redacted>>: no such user Injected: header',
    );
    expect(text).not.toMatch(/^Injected:/m);
    const diagnostic = /^Diagnostic-Code: smtp; (.*)$/m.exec(text)?.[1] ?? '';
    expect(diagnostic.length).toBeLessThanOrEqual(300);
  });
});
