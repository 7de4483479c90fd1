import type { Hasher } from '../src/hasher.js';

/** A real hasher whose next `hash` or `verify` call can be held until the test releases it. */
export class GatedHasher implements Hasher {
  readonly calls: Array<'hash' | 'verify'> = [];
  #held: { method: 'hash' | 'verify'; gate: Promise<void>; reached: () => void } | undefined;
  constructor(readonly inner: Hasher) {}

  /** Holds the next call of `method`; `reached` resolves when it starts, `release` lets it go on. */
  holdNext(method: 'hash' | 'verify'): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const started = new Promise<void>((resolve) => (reached = resolve));
    this.#held = { method, gate, reached };
    return { reached: started, release };
  }

  async hash(password: string): Promise<string> {
    this.calls.push('hash');
    await this.#wait('hash');
    return this.inner.hash(password);
  }
  async verify(hash: string, password: string): Promise<boolean> {
    this.calls.push('verify');
    const result = await this.inner.verify(hash, password);
    await this.#wait('verify');
    return result;
  }
  needsRehash(hash: string): boolean {
    return this.inner.needsRehash(hash);
  }
  async #wait(method: 'hash' | 'verify'): Promise<void> {
    const held = this.#held;
    if (held?.method !== method) return;
    this.#held = undefined;
    held.reached();
    await held.gate;
  }
}
