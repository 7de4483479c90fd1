import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';
import { luaText } from '../../vitest.shared.ts';

const packages = fileURLToPath(new URL('../../packages/', import.meta.url));

// A fresh clone runs the tests before any package is built: resolve every @postern import
// (and subpath) to the package's source instead of its dist/.
const entries: [string, string][] = [
  ['auth/testing', 'auth/src/testing.ts'],
  ['auth/redis', 'auth/src/redis.ts'],
  ['auth', 'auth/src/index.ts'],
  ['config', 'config/src/index.ts'],
  ['logger', 'logger/src/index.ts'],
  ['resilience', 'resilience/src/index.ts'],
  ['rate-limit/redis', 'rate-limit/src/redis.ts'],
  ['rate-limit', 'rate-limit/src/index.ts'],
  ['sync-queue/redis', 'sync-queue/src/redis.ts'],
  ['sync-queue', 'sync-queue/src/index.ts'],
  ['smtp-forward', 'smtp-forward/src/index.ts'],
];

export default defineProject({
  plugins: [luaText()],
  resolve: {
    alias: entries.map(([name, file]) => ({
      find: new RegExp(`^@postern/${name.replace('/', '\\/')}$`),
      replacement: packages + file,
    })),
  },
  test: {
    name: '@postern/reference-server',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
