import { describe, it } from 'vitest';
import { checkRotationModel } from '../test/rotation-model.js';
import { MemoryAuthStore } from './memory-store.js';

describe('refresh rotation against a model (memory store)', () => {
  it('matches the model for any sequence of refreshes with any earlier token and any waits', async () => {
    await checkRotationModel(() => new MemoryAuthStore(), 60);
  });
});
