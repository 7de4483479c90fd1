import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Supervisor } from '../src/supervisor.js';
import { eventually } from './support/capture.js';

const fixture = (name: string): string =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe('Supervisor', () => {
  it('starts children in order, restarts a crashed one, and stops them in reverse order', async () => {
    const lines: string[] = [];
    const supervisor = new Supervisor({
      execArgv: [],
      restartDelayMs: 50,
      output: (name, line) => lines.push(`${name}: ${line}`),
      log: (line) => lines.push(`log: ${line}`),
    });
    const first = await supervisor.start({
      name: 'first',
      module: fixture('child.mjs'),
      env: { ...process.env, CHILD_NAME: 'first' },
    });
    const second = await supervisor.start({
      name: 'second',
      module: fixture('child.mjs'),
      env: { ...process.env, CHILD_NAME: 'second' },
    });
    expect(first).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(0);
    const before = supervisor.pid('first');
    process.kill(before!, 'SIGKILL');
    await eventually(() =>
      supervisor.restarts('first') === 1 &&
      supervisor.pid('first') !== before &&
      lines.filter((line) => line === 'first: listening first').length === 2
        ? true
        : undefined,
    );
    expect(lines).toContain('log: first exited (SIGKILL); restarting in 50 ms');
    await supervisor.stop();
    const stops = lines.filter((line) => line.startsWith('log: stopping'));
    expect(stops).toEqual(['log: stopping second', 'log: stopping first']);
    expect(lines.indexOf('second: stopping second')).toBeLessThan(
      lines.indexOf('first: stopping first'),
    );
    expect(supervisor.restarts('nobody')).toBe(0);
  });

  it('rejects when a child exits before it is ready', async () => {
    const supervisor = new Supervisor({
      execArgv: [],
      restartDelayMs: 10_000,
      log: () => undefined,
      output: () => undefined,
    });
    await expect(
      supervisor.start({ name: 'broken', module: fixture('broken.mjs'), env: process.env }),
    ).rejects.toThrow('broken exited with 7 before it was ready');
    await supervisor.stop();
  });
});
