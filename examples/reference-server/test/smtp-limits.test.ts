import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

let harness: ProcessHarness;
const ports: number[] = [];

beforeAll(async () => {
  harness = await startProcessHarness('smtplimit', { env: { LIMITS_SMTP_PER_MINUTE: '3' } });
  await seedAlias(harness.database, {
    email: 'l@example.org',
    localPart: 'limited',
    destinations: ['far@dest.test'],
  });
  for (const name of ['smtp-1', 'smtp-2']) ports.push(await harness.start('smtp', {}, name));
}, 60_000);

afterAll(() => harness.close());

describe('SMTP limits on Redis across two SMTP processes', () => {
  it('one client IP gets one budget, whichever process it reaches', async () => {
    const outcomes: number[] = [];
    const transcripts: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      const result = await swaks(
        ports[index % 2]!,
        `sender${index}@origin.test`,
        'limited@alias.test',
      );
      outcomes.push(result.code ?? -1);
      transcripts.push(result.output);
    }
    expect(outcomes.slice(0, 3)).toEqual([0, 0, 0]);
    expect(outcomes[3]).not.toBe(0);
    expect(transcripts[3]).toMatch(/<\*\* (421|450)/);
    expect(harness.capture.messages).toHaveLength(3);
  }, 40_000);
});
