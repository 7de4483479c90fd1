#!/usr/bin/env node
// Creates packages/<name> from the template every Postern package follows:
// `node scripts/new-package.mjs <name> "<one-line description>"`.
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [name, description = ''] = process.argv.slice(2);
if (!name || !/^[a-z][a-z0-9-]*$/.test(name)) {
  console.error('usage: pnpm new-package <kebab-case-name> "<one-line description>"');
  process.exit(1);
}
const dir = join(root, 'packages', name);
const exists = await access(dir).then(
  () => true,
  () => false,
);
if (exists) {
  console.error(`packages/${name} already exists`);
  process.exit(1);
}

const fence = '`'.repeat(3);
const files = {
  'package.json':
    JSON.stringify(
      {
        name: `@postern/${name}`,
        version: '0.0.0',
        description,
        license: 'MIT',
        type: 'module',
        sideEffects: false,
        engines: { node: '^20.19.0 || ^22.12.0 || >=24' },
        files: ['dist'],
        main: './dist/index.cjs',
        module: './dist/index.js',
        types: './dist/index.d.cts',
        exports: {
          '.': {
            import: { types: './dist/index.d.ts', default: './dist/index.js' },
            require: { types: './dist/index.d.cts', default: './dist/index.cjs' },
          },
          './package.json': './package.json',
        },
        scripts: {
          build: 'tsup',
          'check:package': 'publint --strict && attw --pack . --profile node16',
        },
        repository: {
          type: 'git',
          url: 'git+https://github.com/postern/postern.git',
          directory: `packages/${name}`,
        },
        publishConfig: { access: 'public' },
        keywords: ['postern'],
      },
      null,
      2,
    ) + '\n',
  'tsconfig.json':
    JSON.stringify(
      {
        extends: '../../tsconfig.base.json',
        compilerOptions: {
          rootDir: '.',
          outDir: '.tsbuild',
          tsBuildInfoFile: '.tsbuild/tsconfig.tsbuildinfo',
        },
        include: ['src', 'test'],
      },
      null,
      2,
    ) + '\n',
  'tsconfig.build.json':
    JSON.stringify(
      {
        extends: './tsconfig.json',
        compilerOptions: { composite: false, incremental: false, declarationMap: false },
        include: ['src'],
        exclude: ['src/**/*.test.ts'],
      },
      null,
      2,
    ) + '\n',
  'tsup.config.ts': `import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  tsconfig: 'tsconfig.build.json',
  // Redis scripts live in .lua files and are inlined as text at build time.
  loader: { '.lua': 'text' },
});
`,
  'vitest.config.ts': `import { defineProject } from 'vitest/config';
import { luaText } from '../../vitest.shared.ts';

export default defineProject({
  plugins: [luaText()],
  test: {
    name: '@postern/${name}',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
  },
});
`,
  'src/index.ts': `// The public surface of @postern/${name}: every export is named here.
export { VERSION } from './version.js';
`,
  'src/version.ts': `/** The package version, for diagnostics. */
export const VERSION: string = '0.0.0';
`,
  'README.md': [
    `# @postern/${name}`,
    '',
    description,
    '',
    '## Install',
    '',
    fence + 'sh',
    `npm install @postern/${name}`,
    fence,
    '',
    '## Quick start',
    '',
    fence + 'ts',
    `import { VERSION } from '@postern/${name}';`,
    'console.log(VERSION);',
    fence,
    '',
  ].join('\n'),
};

for (const [file, text] of Object.entries(files)) {
  const path = join(dir, file);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

// Register the new project with `tsc --build`.
const tsconfigPath = join(root, 'tsconfig.json');
const tsconfig = JSON.parse(await readFile(tsconfigPath, 'utf8'));
const reference = { path: `packages/${name}` };
if (!tsconfig.references.some((entry) => entry.path === reference.path)) {
  tsconfig.references.push(reference);
  await writeFile(tsconfigPath, JSON.stringify(tsconfig, null, 2) + '\n');
}
console.log(`created packages/${name}; run 'npx -y pnpm@10.34.9 install' next`);
