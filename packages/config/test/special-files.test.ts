// NAME_FILE and .env files that are not small regular files: none may hang or exhaust start-up.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, MAX_FILE_BYTES, secret } from '../src/index.js';

const directory = mkdtempSync(join(tmpdir(), `postern-config-files-${String(process.pid)}-`));
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

function issuesOf(run: () => unknown): ConfigError['issues'] {
  try {
    run();
  } catch (error) {
    if (ConfigError.isInstance(error)) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('NAME_FILE that is not a small regular file', () => {
  it('refuses a FIFO without waiting for a writer', () => {
    const fifo = join(directory, 'secret.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const issues = issuesOf(() => loadConfig({ key: secret() }, { env: { KEY_FILE: fifo } }));
    expect(issues).toEqual([
      {
        code: 'FILE_UNREADABLE',
        path: ['key'],
        env: 'KEY_FILE',
        message: `names a file that cannot be read (${fifo}: not a regular file)`,
      },
    ]);
  });

  it('refuses a device such as /dev/urandom instead of reading forever', () => {
    const issues = issuesOf(() =>
      loadConfig({ key: secret() }, { env: { KEY_FILE: '/dev/urandom' } }),
    );
    expect(issues[0]?.message).toBe(
      'names a file that cannot be read (/dev/urandom: not a regular file)',
    );
  });

  it('refuses a file larger than MAX_FILE_BYTES', () => {
    const big = join(directory, 'big');
    writeFileSync(big, '');
    truncateSync(big, MAX_FILE_BYTES + 1);
    const issues = issuesOf(() => loadConfig({ key: secret() }, { env: { KEY_FILE: big } }));
    expect(issues[0]?.message).toBe(
      `names a file that cannot be read (${big}: larger than ${String(MAX_FILE_BYTES)} bytes)`,
    );
  });

  it('reads a file of exactly MAX_FILE_BYTES', () => {
    const edge = join(directory, 'edge');
    writeFileSync(edge, 'k'.repeat(MAX_FILE_BYTES - 20) + 'vQ8#nL2$wZ5!rT9@kM4&');
    const config = loadConfig(
      { key: secret({ minEntropyBits: 0 }) },
      { mode: 'production', env: { KEY_FILE: edge } },
    );
    expect(config.key.reveal()).toHaveLength(MAX_FILE_BYTES);
  });
});

describe('.env file that is not a small regular file', () => {
  it('reports a FIFO instead of hanging', () => {
    const fifo = join(directory, 'env.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const issues = issuesOf(() =>
      loadConfig({ key: secret({ default: 'x' }) }, { env: {}, envFile: fifo }),
    );
    expect(issues).toEqual([
      {
        code: 'ENV_FILE_UNREADABLE',
        path: [],
        env: fifo,
        message: 'cannot be read (not a regular file)',
      },
    ]);
  });
});
