import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Runs one young-generation (scavenge) collection. */
type Collect = () => void;

let collector: Collect | null | undefined;

/**
 * V8's collector, as a function that runs a young-generation collection; null where V8 will not
 * expose it. Taken from `globalThis.gc` when the process runs with `--expose-gc`, else exposed
 * once for a fresh context only (the flag is switched off again, so no other context sees `gc`).
 */
export function youngCollector(): Collect | null {
  if (collector !== undefined) return collector;
  let gc: unknown = (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== 'function') {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc');
      setFlagsFromString('--no-expose-gc');
    } catch {
      gc = undefined;
    }
  }
  collector =
    typeof gc === 'function'
      ? () => (gc as (options: { type: 'minor' }) => void)({ type: 'minor' })
      : null;
  return collector;
}

/**
 * Counts message bytes and runs a young-generation collection every `everyBytes` of them.
 *
 * Socket reads and smtp-server's copies are Buffers that die young, but V8 only collects them
 * once they add up to twice its largest semi-space (32 MiB on Node 20 and 22, about 48 MiB on
 * Node 24) unless other allocation triggers a collection first. A large message is mostly bytes
 * and few objects, so without this the process grows by that much while it streams one.
 */
export class ByteCollector {
  #pending = 0;

  /** `false` never collects; `collect` defaults to {@link youngCollector}. */
  constructor(
    private readonly everyBytes: number | false,
    private readonly collect: Collect | null = everyBytes === false ? null : youngCollector(),
  ) {}

  /** Adds `bytes`; collects once `everyBytes` have been added since the last collection. */
  add(bytes: number): void {
    if (this.collect === null || this.everyBytes === false) return;
    this.#pending += bytes;
    if (this.#pending < this.everyBytes) return;
    this.#pending = 0;
    this.collect();
  }
}
