#!/usr/bin/env node
// Type-checks every ```ts block of the package READMEs against the package's own source, so a
// README example can never drift from the API. `node scripts/check-readmes.mjs [name ...]`.
// Each block is a standalone ES module (top-level await allowed); `@postern/<name>` and its
// subpaths resolve to src/ through the package's `exports` map.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const requested = process.argv.slice(2);
const names = (requested.length > 0 ? requested : readdirSync(join(root, 'packages'))).filter(
  (name) => existsSync(join(root, 'packages', name, 'package.json')),
);

const files = [];
const paths = {};
let blockCount = 0;
for (const name of names) {
  const directory = join(root, 'packages', name);
  const manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8'));
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    const entry = typeof target === 'object' ? target.import?.default : undefined;
    if (typeof entry !== 'string') continue;
    const source = join(directory, entry.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
    if (existsSync(source)) paths[join(manifest.name, subpath)] = [source];
  }
  const readme = join(directory, 'README.md');
  if (!existsSync(readme)) continue;
  const outDirectory = join(directory, '.tsbuild', 'readme');
  rmSync(outDirectory, { recursive: true, force: true });
  mkdirSync(outDirectory, { recursive: true });
  const text = readFileSync(readme, 'utf8');
  const fence = /^```(?:ts|typescript)\s*\n([\s\S]*?)^```/gm;
  let match;
  let index = 0;
  while ((match = fence.exec(text)) !== null) {
    index += 1;
    const line = text.slice(0, match.index).split('\n').length;
    const file = join(outDirectory, `readme-line-${line}.ts`);
    writeFileSync(
      file,
      `// From packages/${name}/README.md line ${line}.\n${match[1]}\nexport {};\n`,
    );
    files.push(file);
  }
  blockCount += index;
}

if (files.length === 0) {
  console.log('no README code blocks to check');
  process.exit(0);
}
const configDirectory = join(root, 'node_modules', '.cache', 'readme-check');
mkdirSync(configDirectory, { recursive: true });
const configFile = join(configDirectory, 'tsconfig.json');
writeFileSync(
  configFile,
  JSON.stringify(
    {
      extends: join(root, 'tsconfig.base.json'),
      compilerOptions: {
        composite: false,
        declaration: false,
        declarationMap: false,
        emitDeclarationOnly: false,
        noEmit: true,
        incremental: false,
        // Examples show one call at a time; an unused result is not a defect in prose.
        noUnusedLocals: false,
        noUnusedParameters: false,
        paths,
      },
      files,
    },
    null,
    2,
  ),
);
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const result = spawnSync(process.execPath, [tsc, '-p', configFile], { stdio: 'inherit' });
if (result.status === 0)
  console.log(`README examples type-check: ${blockCount} blocks in ${names.length} packages`);
process.exit(result.status ?? 1);
