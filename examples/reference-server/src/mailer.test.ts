import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OutboxMailer, composeSystemMail } from './mailer.js';
import { Outbox } from './outbox.js';

describe('composeSystemMail', () => {
  it('writes CRLF text and strips CR/LF from header values so nothing can inject a header', () => {
    const text = composeSystemMail(
      {
        to: 'a@example.org\r\nBcc: evil@example.org',
        subject: 'Hi\nX-Evil: 1',
        text: 'line 1\nline 2',
      },
      'no-reply@alias.test',
      new Date(0),
    );
    expect(text).toContain('To: <a@example.org Bcc: evil@example.org>\r\n');
    expect(text).toContain('Subject: Hi X-Evil: 1\r\n');
    expect(text).not.toMatch(/\r\nBcc:/);
    expect(text).toContain('Date: Thu, 01 Jan 1970 00:00:00 GMT');
    expect(text.endsWith('line 1\r\nline 2\r\n')).toBe(true);
  });
});

describe('Outbox and OutboxMailer', () => {
  it('writes .eml files atomically and lists them newest first with envelope and subject', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'postern-outbox-'));
    try {
      let now = 1_700_000_000_000;
      const outbox = new Outbox(join(directory, 'outbox'), () => now);
      expect(await outbox.list()).toEqual([]);
      await new OutboxMailer(outbox, 'no-reply@alias.test').send({
        to: 'a@example.org',
        subject: 'First',
        text: 'one',
      });
      now += 1;
      const id = await outbox.write({
        from: 'SRS0=x@alias.test',
        to: ['b@example.org', 'c@example.org'],
        raw: Buffer.from('Subject: Second\r\n\r\nbody'),
      });
      const entries = await outbox.list();
      expect(entries.map((entry) => entry.subject)).toEqual(['Second', 'First']);
      expect(entries[0]).toMatchObject({
        id,
        from: 'SRS0=x@alias.test',
        to: ['b@example.org', 'c@example.org'],
        createdAt: now,
      });
      expect(await outbox.read(id)).toContain(
        'X-Postern-Envelope-To: <b@example.org>, <c@example.org>',
      );
      expect(await outbox.read('../../etc/passwd')).toBeNull();
      expect(await outbox.read('1700000000000-000000000000')).toBeNull();
      expect(outbox.directory).toBe(join(directory, 'outbox'));
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
