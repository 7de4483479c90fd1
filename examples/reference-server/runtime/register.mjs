// `node --import tsx --import ./runtime/register.mjs`: adds the `.lua` text loader.
import { register } from 'node:module';

register('./lua-hooks.mjs', import.meta.url);
