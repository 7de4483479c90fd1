// Module hooks: the packages keep Redis scripts in `.lua` files that their build inlines as text.
// The reference server runs the packages from source (tsx + tsconfig paths), so it loads them the
// same way: as a module whose default export is the file's text.
import { readFile } from 'node:fs/promises';

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.endsWith('.lua')) {
    const text = await readFile(new URL(url), 'utf8');
    return {
      format: 'module',
      source: `export default ${JSON.stringify(text)};`,
      shortCircuit: true,
    };
  }
  return nextLoad(url, context);
}
