import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Intake } from './intake.js';

const options = {
  maxMessageBytes: 1_000_000,
  maxHeaderBytes: 1000,
  memoryBytes: 64,
  spoolDir: tmpdir(),
};

async function take(chunks: string[], overrides: Partial<typeof options> = {}): Promise<Intake> {
  const intake = new Intake({ ...options, ...overrides });
  await pipeline(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))), intake);
  return intake;
}

describe('Intake', () => {
  it('splits the header block from the body even when CRLFCRLF straddles chunks', async () => {
    const intake = await take(['Subject: a\r', '\n\r', '\nbody\r\n']);
    expect(intake.header.toString()).toBe('Subject: a\r\n');
    expect(await text(intake.spool.read())).toBe('body\r\n');
    await intake.spool.dispose();
  });

  it('takes a message that starts with the blank line as an empty header and all body', async () => {
    for (const chunks of [
      ['\r\nFrom: x@y.test\r\n\r\nbody\r\n'],
      ['\r', '\nFrom: x@y.test\r\n', '\r\nbody\r\n'],
      ['\nFrom: x@y.test\n\nbody\n'],
    ]) {
      const intake = await take(chunks);
      expect(intake.header.length).toBe(0);
      expect(await text(intake.spool.read())).toBe('From: x@y.test\r\n\r\nbody\r\n');
      await intake.spool.dispose();
    }
  });

  it('counts the size limit on the message as relayed, bare LFs made CRLF', async () => {
    const bare = await take(['H: v\n\n', 'a\n'.repeat(10)], { maxMessageBytes: 30 });
    expect(bare.bytes).toBe(26);
    expect(bare.problem).toBe('size');
    await bare.spool.dispose();
    const exact = await take(['H: v\r\n\r\n', 'a\r\n'.repeat(8)], { maxMessageBytes: 32 });
    expect(exact.problem).toBeUndefined();
    await exact.spool.dispose();
    const trailingCr = await take(['H: v\r\n\r\nabc\r'], { maxMessageBytes: 12 });
    expect(trailingCr.problem).toBe('size');
    await trailingCr.spool.dispose();
  });

  it('normalises bare LF and bare CR to CRLF, across chunk boundaries', async () => {
    const intake = await take(['A: 1\n\nline\rnext\r', 'x\n.\r\n']);
    expect(intake.header.toString()).toBe('A: 1\r\n');
    expect(await text(intake.spool.read())).toBe('line\r\nnext\r\nx\r\n.\r\n');
    expect(intake.normalised).toBe(5);
    await intake.spool.dispose();
  });

  it('spills large bodies to a file and reads them back identically', async () => {
    const body = 'y'.repeat(500);
    const intake = await take(['H: v\r\n\r\n', body.slice(0, 30), body.slice(30)]);
    expect(intake.spool.onDisk).toBe(true);
    expect(await text(intake.spool.read())).toBe(body);
    expect(await text(intake.spool.read())).toBe(body);
    await intake.spool.dispose();
    await intake.spool.dispose();
  });

  it('flags size and header limits but keeps draining', async () => {
    const big = await take(['H: v\r\n\r\n', 'z'.repeat(200)], { maxMessageBytes: 100 });
    expect(big.problem).toBe('size');
    expect(big.bytes).toBe(208);
    const header = await take([`X: ${'h'.repeat(2000)}\r\n`, '\r\nbody'], {});
    expect(header.problem).toBe('headers');
    const unterminated = await take([`X: ${'h'.repeat(2000)}`]);
    expect(unterminated.problem).toBe('headers');
  });

  it('treats a message without a blank line as all header', async () => {
    const intake = await take(['Subject: only\r\n']);
    expect(intake.header.toString()).toBe('Subject: only\r\n');
    expect(intake.spool.size).toBe(0);
  });

  it('never emits a bare CR or LF, whatever the input and chunking (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.stringMatching(/^[a\r\n.]{0,12}$/), { maxLength: 8 }),
        async (chunks) => {
          const intake = await take(['H: v\r\n\r\n', ...chunks]);
          const out = await text(intake.spool.read());
          await intake.spool.dispose();
          expect(out).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
        },
      ),
      { numRuns: 200 },
    );
  });
});
