import { defineProject } from 'vitest/config';
import { luaText } from '../../vitest.shared.ts';

export default defineProject({
  plugins: [luaText()],
  test: {
    name: '@postern/auth',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
  },
});
