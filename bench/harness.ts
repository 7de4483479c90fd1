/**
 * The benchmark harness every `bench/<name>.bench.ts` uses. Contenders run in the same process,
 * interleaved round by round so a slow patch of the machine hurts all of them alike; the median
 * round is reported. `report` prints a table, or with `--json` one JSON object and nothing else
 * on stdout (the convention of DESIGN.md); `--save` also writes `bench/results/<name>.json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, type as osType, release } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

/** One measured contender. `opsPerSec` or `msgsPerSec` is the figure charts and ratios use. */
export interface BenchResult {
  name: string;
  opsPerSec?: number;
  msgsPerSec?: number;
  [key: string]: unknown;
}

/** Options of `measure` and `suite`. */
export interface MeasureOptions {
  /** Total measuring time per contender, in ms, split over the rounds. Default: 3_000. */
  durationMs?: number;
  /** Untimed warm-up per contender before the first round, in ms. Default: 500. */
  warmupMs?: number;
  /** Rounds per contender; the median is reported. Default: 5. */
  rounds?: number;
  /** Calls kept in flight at once (for async work). Default: 1. */
  concurrency?: number;
}

/** A contender for `suite`. */
export interface BenchCase {
  name: string;
  fn: () => unknown;
  /** Extra fields copied into the result (versions, settings). */
  meta?: Record<string, unknown>;
}

const DEFAULTS: Required<MeasureOptions> = {
  durationMs: 3_000,
  warmupMs: 500,
  rounds: 5,
  concurrency: 1,
};

/** True when the script was started with `--json`. */
export const jsonOutput: boolean = process.argv.includes('--json');

/** Writes progress to stderr, so stdout stays pure JSON under `--json`. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function runFor(
  fn: () => unknown,
  ms: number,
  concurrency: number,
): Promise<{ ops: number; elapsedMs: number }> {
  let ops = 0;
  const start = performance.now();
  const deadline = start + ms;
  // Reading the clock costs about as much as a fast call, so calls run in batches that grow while
  // a batch takes under half a millisecond; slow calls still stop close to the deadline.
  const loop = async (): Promise<void> => {
    let batch = 1;
    for (;;) {
      const batchStart = performance.now();
      if (batchStart >= deadline) return;
      for (let index = 0; index < batch; index += 1) {
        const value = fn();
        if (value instanceof Promise) await value;
      }
      ops += batch;
      if (batch < 4096 && performance.now() - batchStart < 0.5) batch *= 2;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { ops, elapsedMs: performance.now() - start };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Measures several contenders interleaved round by round; returns one result per case. */
export async function suite(
  cases: BenchCase[],
  options: MeasureOptions = {},
): Promise<BenchResult[]> {
  const settings = { ...DEFAULTS, ...options };
  const perRoundMs = settings.durationMs / settings.rounds;
  for (const entry of cases) {
    progress(`warming up ${entry.name}`);
    await runFor(entry.fn, settings.warmupMs, settings.concurrency);
  }
  const rates = new Map<string, number[]>(cases.map((entry) => [entry.name, []]));
  for (let round = 0; round < settings.rounds; round += 1) {
    for (const entry of cases) {
      const { ops, elapsedMs } = await runFor(entry.fn, perRoundMs, settings.concurrency);
      rates.get(entry.name)!.push((ops * 1000) / elapsedMs);
    }
  }
  return cases.map((entry) => {
    const samples = rates.get(entry.name)!;
    const opsPerSec = median(samples);
    return {
      name: entry.name,
      opsPerSec: Math.round(opsPerSec),
      meanUs: Number((1e6 / opsPerSec).toFixed(3)),
      spreadPct: Number(
        (((Math.max(...samples) - Math.min(...samples)) / opsPerSec) * 100).toFixed(1),
      ),
      rounds: settings.rounds,
      concurrency: settings.concurrency,
      ...entry.meta,
    };
  });
}

/** Measures one contender; see `suite` to compare several fairly. */
export async function measure(
  name: string,
  fn: () => unknown,
  options: MeasureOptions = {},
): Promise<BenchResult> {
  const [result] = await suite([{ name, fn }], options);
  return result!;
}

/** The rate a result is compared by: `opsPerSec`, else `msgsPerSec`. */
export function rateOf(result: BenchResult): number {
  const rate = result.opsPerSec ?? result.msgsPerSec;
  if (rate === undefined)
    throw new Error(`result ${result.name} has neither opsPerSec nor msgsPerSec`);
  return rate;
}

/** `ours / peer` of two results' rates, rounded to two decimals. */
export function ratio(ours: BenchResult, peer: BenchResult): number {
  return Number((rateOf(ours) / rateOf(peer)).toFixed(2));
}

/** The machine a run happened on, recorded with every saved result. */
export function machine(): Record<string, unknown> {
  const cpu = cpus();
  return {
    node: process.version,
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${osType()} ${release()}`,
  };
}

function benchName(): string {
  const script = process.argv[1] ?? 'bench';
  return basename(script).replace(/\.bench\.[cm]?[jt]s$/, '');
}

/** Prints the results and ratios (a table, or JSON under `--json`) and saves them under `--save`. */
export function report(
  title: string,
  results: BenchResult[],
  ratios: Record<string, number>,
): void {
  const output = {
    bench: benchName(),
    title,
    date: new Date().toISOString(),
    machine: machine(),
    results,
    ratios,
  };
  if (process.argv.includes('--save')) {
    const directory = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(directory, { recursive: true });
    writeFileSync(join(directory, `${output.bench}.json`), `${JSON.stringify(output, null, 2)}\n`);
  }
  if (jsonOutput) {
    process.stdout.write(`${JSON.stringify(output)}\n`);
    return;
  }
  const rows = results.map((result) => ({
    name: result.name,
    rate: rateOf(result).toLocaleString('en-US'),
    unit: result.opsPerSec === undefined ? 'msgs/s' : 'ops/s',
    mean: typeof result['meanUs'] === 'number' ? `${String(result['meanUs'])} µs` : '',
  }));
  const width = (key: keyof (typeof rows)[number], label: string): number =>
    Math.max(label.length, ...rows.map((row) => row[key].length));
  const widths = {
    name: width('name', 'contender'),
    rate: width('rate', 'rate'),
    unit: 6,
    mean: width('mean', 'mean'),
  };
  console.log(`\n${title}\n`);
  console.log(
    `${'contender'.padEnd(widths.name)}  ${'rate'.padStart(widths.rate)}  ${'unit'.padEnd(widths.unit)}  mean`,
  );
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(widths.name)}  ${row.rate.padStart(widths.rate)}  ${row.unit.padEnd(widths.unit)}  ${row.mean}`,
    );
  }
  console.log('');
  for (const [key, value] of Object.entries(ratios)) console.log(`${key}: ${value.toFixed(2)}x`);
}
