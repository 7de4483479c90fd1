import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/supervisor.js';
import type { SupervisorOptions } from '../src/supervisor.js';
import { eventually } from './support/capture.js';

const fixture = (name: string): string =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

// Every supervisor a test made is stopped after it, so a failing test leaves no child running.
const supervisors: Supervisor[] = [];
afterEach(async () => {
  for (const supervisor of supervisors.splice(0)) await supervisor.stop();
});

function supervise(options: SupervisorOptions): Supervisor {
  const supervisor = new Supervisor(options);
  supervisors.push(supervisor);
  return supervisor;
}

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

  it('rejects when a child exits before it is ready, and leaves restarting it to the caller', async () => {
    const lines: string[] = [];
    const supervisor = new Supervisor({
      execArgv: [],
      restartDelayMs: 10,
      log: (line) => lines.push(line),
      output: () => undefined,
    });
    await expect(
      supervisor.start({ name: 'broken', module: fixture('broken.mjs'), env: process.env }),
    ).rejects.toThrow('broken exited with 7 before it was ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(supervisor.restarts('broken')).toBe(0);
    expect(lines).toEqual(['broken exited (7) before it was ready; not restarting it']);
    await supervisor.stop();
  });

  it('gives up on a child that crashes more than maxCrashes times within the window: stops every child and says why', async () => {
    const lines: string[] = [];
    const supervisor = supervise({
      execArgv: [],
      restartDelayMs: 20,
      maxRestartDelayMs: 40,
      maxCrashes: 4,
      crashWindowMs: 60_000,
      output: (name, line) => lines.push(`${name}: ${line}`),
      log: (line) => lines.push(`log: ${line}`),
    });
    await supervisor.start({
      name: 'steady',
      module: fixture('child.mjs'),
      env: { ...process.env, CHILD_NAME: 'steady' },
    });
    const steady = supervisor.pid('steady');
    const gaveUp = new Promise<unknown[]>((resolve) =>
      supervisor.once('crash-loop', (...details: unknown[]) => resolve(details)),
    );
    // A real child that exits at once on every start (right after it says it is ready).
    await supervisor.start({
      name: 'crashing',
      module: fixture('crash-after-ready.mjs'),
      env: { ...process.env, CHILD_NAME: 'crashing' },
    });
    expect(await gaveUp).toEqual(['crashing', 5]);
    // The supervisor is stopping everything by itself; stop() is that same stop.
    await supervisor.stop();
    // The delay doubles from restartDelayMs and stays at maxRestartDelayMs.
    expect(lines.filter((line) => line.startsWith('log: crashing exited'))).toEqual([
      'log: crashing exited (5); restarting in 20 ms',
      'log: crashing exited (5); restarting in 40 ms',
      'log: crashing exited (5); restarting in 40 ms',
      'log: crashing exited (5); restarting in 40 ms',
    ]);
    expect(lines).toContain(
      'log: crashing crashed 5 times within 60000 ms (more than 4): giving up, stopping every child',
    );
    expect(supervisor.restarts('crashing')).toBe(4);
    // The healthy child was stopped too (with SIGTERM, so it said so), and nothing is restarted.
    expect(lines).toContain('steady: stopping steady');
    expect(() => process.kill(steady!, 0)).toThrow();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(supervisor.restarts('crashing')).toBe(4);
    expect(supervisor.pid('crashing')).toBeUndefined();
  });

  it('counts only the crashes inside the window, and a child that stayed up resets its backoff', async () => {
    let now = 0;
    const lines: string[] = [];
    const supervisor = supervise({
      execArgv: [],
      restartDelayMs: 20,
      stableAfterMs: 60_000,
      maxCrashes: 2,
      crashWindowMs: 10_000,
      now: () => now,
      output: (name, line) => lines.push(`${name}: ${line}`),
      log: (line) => lines.push(`log: ${line}`),
    });
    let gaveUp = false;
    supervisor.on('crash-loop', () => (gaveUp = true));
    await supervisor.start({
      name: 'flaky',
      module: fixture('child.mjs'),
      env: { ...process.env, CHILD_NAME: 'flaky' },
    });
    const runs = (): number => lines.filter((line) => line === 'flaky: listening flaky').length;
    // Kills the running child once it has said it listens, and waits for the next one to.
    const crash = async (restarts: number): Promise<void> => {
      await eventually(() => (runs() === restarts ? true : undefined));
      process.kill(supervisor.pid('flaky')!, 'SIGKILL');
      await eventually(() =>
        supervisor.restarts('flaky') === restarts && runs() === restarts + 1 ? true : undefined,
      );
    };
    await crash(1);
    await crash(2);
    // Two crashes in the window is the limit, not past it; the third comes after the window
    // moved on, and after a run long enough to count as stable.
    now += 60_000;
    await crash(3);
    expect(gaveUp).toBe(false);
    expect(lines.filter((line) => line.startsWith('log: flaky exited'))).toEqual([
      'log: flaky exited (SIGKILL); restarting in 20 ms',
      'log: flaky exited (SIGKILL); restarting in 40 ms',
      'log: flaky exited (SIGKILL); restarting in 20 ms',
    ]);
  });
});
