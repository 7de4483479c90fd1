import { describe, it } from 'vitest';
import { MemoryBackend } from './memory-backend.js';
import { backendContract } from './testing.js';

backendContract({ name: 'MemoryBackend', create: (clock) => new MemoryBackend({ clock }), runner: { describe, it } });
