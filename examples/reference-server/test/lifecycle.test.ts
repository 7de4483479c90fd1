import { fork } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root } from './support/processes.js';

const directories: string[] = [];
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

describe('a child whose launcher went away before it registered its shutdown', () => {
  it('stops instead of running on as an orphan', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'postern-lifecycle-'));
    directories.push(directory);
    const script = join(directory, 'child.mts');
    // The IPC channel closes while the child is still starting (the launcher was SIGKILLed then):
    // the disconnect event has fired before onShutdown listens for it.
    await writeFile(
      script,
      [
        `import { onShutdown, announceReady } from ${JSON.stringify(join(root, 'src', 'lifecycle.ts'))};`,
        `process.disconnect();`,
        `await new Promise((resolve) => setTimeout(resolve, 50));`,
        `setInterval(() => undefined, 1_000);`,
        `onShutdown(async () => undefined);`,
        `announceReady('child', 1);`,
      ].join('\n'),
    );
    const child = fork(script, [], {
      execArgv: ['--import', 'tsx'],
      cwd: root,
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    const exited = await new Promise<number | null>((resolve) => {
      const guard = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(-1);
      }, 15_000);
      child.on('exit', (code) => {
        clearTimeout(guard);
        resolve(code);
      });
    });
    expect(exited).toBe(0);
  }, 30_000);
});
