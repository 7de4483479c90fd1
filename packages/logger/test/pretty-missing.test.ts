// Proves the real fallback when pino-pretty cannot be resolved: the package's source runs in a
// child process from a directory where pino resolves and pino-pretty does not, with
// NODE_ENV=development, through the default `createRequire` lookup (no injected require).
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..');
const requireHere = createRequire(import.meta.url);
let directory = '';

function run(
  script: string,
  env: Record<string, string>,
): { status: number | null; stdout: string; stderr: string } {
  writeFileSync(join(directory, 'run.ts'), script);
  const tsx = pathToFileURL(requireHere.resolve('tsx')).href;
  const result = spawnSync(process.execPath, ['--import', tsx, 'run.ts'], {
    cwd: directory,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'postern-logger-nopretty-'));
  mkdirSync(join(directory, 'src'));
  for (const file of readdirSync(join(packageRoot, 'src'))) {
    if (file.endsWith('.ts') && !file.endsWith('.test.ts'))
      copyFileSync(join(packageRoot, 'src', file), join(directory, 'src', file));
  }
  mkdirSync(join(directory, 'node_modules'));
  symlinkSync(
    realpathSync(join(packageRoot, 'node_modules', 'pino')),
    join(directory, 'node_modules', 'pino'),
    'dir',
  );
  writeFileSync(join(directory, 'package.json'), '{ "type": "module" }\n');
});

afterAll(() => {
  if (directory !== '') rmSync(directory, { recursive: true, force: true });
});

describe('pino-pretty missing at run time', () => {
  it('cannot resolve pino-pretty from the copy (the precondition of this test)', () => {
    const result = run(
      "import { createRequire } from 'node:module';\ntry { createRequire(import.meta.url).resolve('pino-pretty'); console.log('found'); } catch { console.log('missing'); }\n",
      {},
    );
    expect(result.stdout.trim()).toBe('missing');
  });

  it('writes JSON with one warning line and redaction intact, and exits cleanly', () => {
    const script = [
      "import { createLogger } from './src/index.ts';",
      "const logger = createLogger({ name: 'dev', clock: () => 0 });",
      "logger.info({ req: { headers: { Authorization: 'Bearer abcdefghijklmnopqrstuvwxyz' } } }, 'still logging');",
      '',
    ].join('\n');
    const result = run(script, { NODE_ENV: 'development' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toMatchObject([
      { level: 40, name: 'dev', loggerWarning: 'PRETTY_NOT_INSTALLED' },
      { level: 30, msg: 'still logging', req: { headers: { Authorization: '[Redacted]' } } },
    ]);
    expect(result.stdout).not.toContain('abcdefghijklmnopqrstuvwxyz');
  });
});
