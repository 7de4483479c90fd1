#!/usr/bin/env node
// `pnpm start`: launches the reference server (examples/reference-server) once it exists; until
// then it says what the workspace holds and how to try each package.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const server = join(root, 'examples', 'reference-server');
if (existsSync(join(server, 'package.json'))) {
  // The server runs the packages through their public entries, which point at dist/: build any
  // package that has not been built yet (a fresh clone), so the start command works as pasted.
  const unbuilt = readdirSync(join(root, 'packages')).filter(
    (name) => existsSync(join(root, 'packages', name, 'package.json')) && !existsSync(join(root, 'packages', name, 'dist')),
  );
  if (unbuilt.length > 0) {
    console.log(`building ${unbuilt.join(', ')} first`);
    const build = spawnSync('npx', ['-y', 'pnpm@10.34.9', 'run', 'build'], { cwd: root, stdio: 'inherit' });
    if (build.status !== 0) process.exit(build.status ?? 1);
  }
  const child = spawn('npx', ['-y', 'pnpm@10.34.9', '--filter', '@postern/reference-server', 'start'], {
    cwd: root,
    stdio: 'inherit',
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  console.log('Postern workspace: the reference server (examples/reference-server) is not built yet.\n');
  console.log('Packages here:');
  for (const name of readdirSync(join(root, 'packages')).sort()) {
    const manifestPath = join(root, 'packages', name, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    console.log(`  ${manifest.name.padEnd(24)} ${manifest.description}`);
  }
  console.log('\nEach package README has a quick start; `npx -y pnpm@10.34.9 test` runs every test.');
}
