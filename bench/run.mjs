#!/usr/bin/env node
// `pnpm bench <name> [--json] [--save]` runs bench/<name>.bench.ts with tsx, from bench/ so the
// workspace packages and peers resolve; `pnpm bench` alone lists the benchmarks.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.replace(/\.bench\.ts$/, ''))
  .sort();
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  const stream = name ? process.stderr : process.stdout;
  stream.write(`usage: pnpm bench <name> [--json] [--save]\nbenchmarks: ${available.join(', ')}\n`);
  process.exit(name ? 1 : 0);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', join(here, `${name}.bench.ts`), ...rest],
  {
    cwd: here,
    stdio: 'inherit',
  },
);
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
