import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OutboxMailer } from '../src/mailer.js';
import { Outbox } from '../src/outbox.js';

const directories: string[] = [];
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

describe('the outbox holding system mail (reset tokens)', () => {
  it('is readable by its owner only, whatever the umask', async () => {
    const base = await mkdtemp(join(tmpdir(), 'postern-outbox-'));
    directories.push(base);
    const directory = join(base, 'outbox');
    const previous = process.umask(0o022);
    try {
      const outbox = new Outbox(directory);
      await new OutboxMailer(outbox, 'no-reply@alias.test').send({
        to: 'me@example.org',
        subject: 'Reset your password',
        text: 'token: 00000000-0000-0000-0000-000000000000.secret',
      });
      const [entry] = await outbox.list();
      expect((await stat(directory)).mode & 0o777).toBe(0o700);
      expect((await stat(join(directory, `${entry?.id ?? ''}.eml`))).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(previous);
    }
  });
});
