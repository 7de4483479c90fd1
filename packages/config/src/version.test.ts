import { describe, expect, it } from 'vitest';
import { VERSION } from './index.js';
describe('version', () => { it('is a string', () => { expect(typeof VERSION).toBe('string'); }); });
