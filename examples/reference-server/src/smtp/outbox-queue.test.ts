import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Outbox } from '../outbox.js';
import { OutboxDeliveryQueue } from './outbox-queue.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function directory(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-outbox-queue-'));
  dirs.push(dir);
  return dir;
}

describe('OutboxDeliveryQueue', () => {
  it('moves a spooled message into the outbox and leaves nothing of it in the spool', async () => {
    const spool = await directory();
    const outbox = new Outbox(await directory());
    const path = join(spool, 'm1.eml');
    await writeFile(path, 'Subject: hello\r\n\r\nbody\r\n');
    await writeFile(`${path}.json`, '{}');
    await new OutboxDeliveryQueue(outbox).add({
      messageId: 'm1',
      path,
      mailFrom: 'SRS0=x=yy=origin.test=a@alias.test',
      originalSender: 'a@origin.test',
      recipients: ['me@dest.test'],
      aliases: ['shop@alias.test'],
    });
    expect(await readdir(spool)).toEqual([]);
    const [entry] = await outbox.list();
    expect(entry).toMatchObject({ to: ['me@dest.test'], subject: 'hello' });
  });
});
