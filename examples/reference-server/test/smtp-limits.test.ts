import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';

let harness: ProcessHarness;
let port: number;

/** swaks from one loopback address, so each message gets a per-IP budget of its own. */
function swaksFrom(
  localAddress: string,
  from: string,
  to: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/usr/bin/swaks',
      [
        ...['--server', '127.0.0.1', '--port', String(port), '--local-interface', localAddress],
        ...['--from', from, '--to', to, '--helo', 'client.test', '--body', 'hi', '--timeout', '20'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

beforeAll(async () => {
  harness = await startProcessHarness('smtplimits', {
    env: { LIMITS_SMTP_PER_MINUTE: '2', SMTP_METRICS_PORT: '0' },
    capture: { refuse: { addresses: ['private-dest@dest.test'], code: 450 } },
  });
  await seedAlias(harness.database, {
    email: 'l@example.org',
    localPart: 'limited',
    destinations: ['far@dest.test'],
  });
  await seedAlias(harness.database, {
    email: 'p@example.org',
    localPart: 'private',
    destinations: ['private-dest@dest.test'],
  });
  port = await harness.start('smtp');
}, 60_000);

afterAll(() => harness.close());

describe('SMTP per-sender limit keys', () => {
  it('counts one sender once, whatever its case, +tag or SRS wrapping', async () => {
    const senders = [
      'Spammer+1@Origin.test',
      'spammer+2@origin.test',
      'SRS0=abcd=XY=origin.test=spammer@forwarder.test',
    ];
    const results = [];
    for (const [index, sender] of senders.entries())
      results.push(await swaksFrom(`127.0.0.${index + 2}`, sender, 'limited@alias.test'));
    expect(results.map((result) => result.code).slice(0, 2)).toEqual([0, 0]);
    expect(results[2]?.output).toMatch(/<\*\* 450 4\.7\.1/);
    expect(harness.capture.messages).toHaveLength(2);
  }, 60_000);
});

describe('SMTP metrics labels', () => {
  it('never carry an address, a relay answer or a retry delay as a label value', async () => {
    const deferred = await swaksFrom('127.0.0.10', 'someone@origin.test', 'private@alias.test');
    expect(deferred.output).toMatch(/<\*\* 4\d\d/);
    // Over the per-IP budget: a "try again in Ns" refusal.
    for (let index = 0; index < 3; index += 1)
      await swaksFrom('127.0.0.11', `other${index}@origin.test`, 'limited@alias.test');
    const metricsPort = harness.supervisor.metricsPort('smtp');
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const lines = text.split('\n').filter((line) => line.startsWith('postern_smtp_messages_total'));
    expect(lines.some((line) => line.includes('outcome="deferred"'))).toBe(true);
    expect(lines.some((line) => line.includes('outcome="rejected"'))).toBe(true);
    for (const line of lines) {
      expect(line).not.toMatch(/@|<|try again in/);
      expect(line).toMatch(/reason="(ok|[245](\.\d{1,3}){2}|[245]\d\d|other)"/);
    }
  }, 60_000);
});
