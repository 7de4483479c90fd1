// Runs every ```ts block of the README as its own ES module (with `@postern/config` pointing at
// src), so the documented examples run as pasted, and proves the quick start's production refusal.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), '..');
const runDirectory = join(packageDirectory, '.tsbuild', `readme-run-${String(process.pid)}`);
mkdirSync(runDirectory, { recursive: true });
afterAll(() => {
  rmSync(runDirectory, { recursive: true, force: true });
});

function extract(document: string, label: string): { line: number; file: string }[] {
  const text = readFileSync(document, 'utf8');
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((match, index) => {
    const line = text.slice(0, match.index).split('\n').length;
    const source = (match[1] ?? '').replaceAll(
      "'@postern/config'",
      JSON.stringify(join(packageDirectory, 'src', 'index.ts')),
    );
    const file = join(runDirectory, `${label}-${String(index)}-line-${String(line)}.mts`);
    writeFileSync(file, `${source}\nexport {};\n`);
    return { line, file };
  });
}

const blocks = extract(join(packageDirectory, 'README.md'), 'readme');
// The guide in docs/ is held to the same bar: every example runs.
const guideBlocks = extract(join(packageDirectory, '..', '..', 'docs', 'config.md'), 'guide');

function run(
  file: string,
  extraEnv: Record<string, string>,
): { status: number | null; stdout: string; stderr: string } {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', ...extraEnv };
  const result = spawnSync(process.execPath, ['--import', 'tsx', file], {
    cwd: packageDirectory,
    env,
    encoding: 'utf8',
    timeout: 15_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('README', () => {
  it('has a quick start and an example per API member', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(12);
  });

  it.each(blocks.map((block) => [block.line, block.file] as const))(
    'block at line %i runs',
    (_line, file) => {
      const result = run(file, {});
      // The ConfigError example prints its message on purpose; no block may die with a stack trace.
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(result.status).toBe(0);
    },
  );

  it.each(guideBlocks.map((block) => [block.line, block.file] as const))(
    'docs/config.md block at line %i runs',
    (_line, file) => {
      const result = run(file, {});
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(result.status).toBe(0);
    },
  );

  it('quick start redacts the secret in development and refuses its default in production', () => {
    const quickStart = blocks[0]!.file;
    const development = run(quickStart, {});
    expect(development.stdout).toContain('"jwtSecret":"[redacted]"');
    expect(development.stdout).toContain('SECRET_DEFAULT');
    expect(development.stdout).not.toContain('local-development-only');

    const production = run(quickStart, { NODE_ENV: 'production' });
    expect(production.status).not.toBe(0);
    expect(production.stderr).toContain(
      'JWT_SECRET (jwtSecret): is not set, or set to its default value',
    );
    expect(production.stderr).not.toContain('local-development-only');

    const configured = run(quickStart, {
      NODE_ENV: 'production',
      JWT_SECRET: 'vQ8#nL2$wZ5!rT9@kM4&xB7',
    });
    expect(configured.status).toBe(0);
    expect(configured.stdout).not.toContain('vQ8#nL2$wZ5!rT9@kM4&xB7');
  });
});
