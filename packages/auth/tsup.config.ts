import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    redis: 'src/redis.ts',
    testing: 'src/testing.ts',
    'node-rs-argon2': 'src/node-rs-argon2.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  tsconfig: 'tsconfig.build.json',
  // Redis scripts live in .lua files and are inlined as text at build time.
  loader: { '.lua': 'text' },
});
