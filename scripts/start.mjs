#!/usr/bin/env node
// `pnpm start`: launches the reference server (examples/reference-server), which runs the packages
// from source through tsx, so a fresh clone needs no build first. Without the example it lists the packages.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const server = join(root, 'examples', 'reference-server');
if (existsSync(join(server, 'package.json'))) {
  const child = spawn(
    'npx',
    ['-y', 'pnpm@10.34.9', '--filter', '@postern/reference-server', 'start'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  console.log(
    'Postern workspace: the reference server (examples/reference-server) is not built yet.\n',
  );
  console.log('Packages here:');
  for (const name of readdirSync(join(root, 'packages')).sort()) {
    const manifestPath = join(root, 'packages', name, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    console.log(`  ${manifest.name.padEnd(24)} ${manifest.description}`);
  }
  console.log(
    '\nEach package README has a quick start; `npx -y pnpm@10.34.9 test` runs every test.',
  );
}
