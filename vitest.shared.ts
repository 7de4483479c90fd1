import { readFile } from 'node:fs/promises';
import type { Plugin } from 'vite';

/**
 * Imports `*.lua` files as text in tests, the same way tsup's `text` loader inlines them at
 * build time, so Redis scripts live in real `.lua` files with no code-generation step.
 */
export function luaText(): Plugin {
  return {
    name: 'postern-lua-text',
    enforce: 'pre',
    async load(id) {
      if (!id.endsWith('.lua')) return null;
      const text = await readFile(id, 'utf8');
      return `export default ${JSON.stringify(text)};`;
    },
  };
}
