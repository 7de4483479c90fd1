import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { collectionsDuring } from '../test/helpers.js';
import { ByteCollector, youngCollector } from './memory.js';

describe('ByteCollector', () => {
  it('collects once every everyBytes, carrying nothing over past a collection', () => {
    let calls = 0;
    const collector = new ByteCollector(1000, () => (calls += 1));
    collector.add(999);
    expect(calls).toBe(0);
    collector.add(1);
    expect(calls).toBe(1);
    collector.add(2500);
    expect(calls).toBe(2);
    collector.add(999);
    expect(calls).toBe(2);
    collector.add(1);
    expect(calls).toBe(3);
  });

  it('never collects when turned off', () => {
    let calls = 0;
    const collector = new ByteCollector(false, () => (calls += 1));
    for (let i = 0; i < 100; i += 1) collector.add(2 ** 30);
    expect(calls).toBe(0);
  });
});

describe('youngCollector', () => {
  it('runs a real young-generation collection, without exposing gc to other contexts', async () => {
    const collect = youngCollector();
    expect(collect).toBeTypeOf('function');
    expect(youngCollector()).toBe(collect);
    // One call at a time, each counted on its own: under load Node may deliver the GC entries of
    // calls made back to back late or merged, but every single call must show a collection.
    for (let round = 0; round < 3; round += 1) {
      let kept: unknown[] = [];
      const runs = await collectionsDuring(() => {
        // Young garbage to sweep (far too little to start a collection by itself).
        kept = Array.from({ length: 2000 }, (_, index) => ({ index }));
        collect!();
      });
      expect(kept).toHaveLength(2000);
      expect(runs).toBeGreaterThanOrEqual(1);
    }
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
