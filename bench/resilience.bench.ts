/**
 * @postern/resilience against cockatiel 3.2.1 and opossum 9.0.0 in one run: ops/s of `execute`
 * on an async no-op, sequentially and with 100 calls in flight. Build the package first
 * (`cd packages/resilience && npx tsup`): `@postern/resilience` resolves to its dist.
 */
import {
  circuitBreaker as cockatielBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleAll,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
  TimeoutStrategy,
  wrap as cockatielWrap,
} from 'cockatiel';
import CircuitBreaker from 'opossum';
import { circuitBreaker, retry, timeout, wrap } from '@postern/resilience';
import type { BenchCase, BenchResult } from './harness.ts';
import { progress, ratio, report, suite } from './harness.ts';

const noop = async (): Promise<void> => {};
const readsSignal = ({ signal }: { signal: AbortSignal }): Promise<boolean> =>
  Promise.resolve(signal.aborted);
// The least any breaker can do: observe the work's promise with one reaction and return it.
let observed = 0;
const seen = (): void => {
  observed++;
};
const observeOnly = (): Promise<void> => {
  const promise = noop();
  void promise.then(seen, seen);
  return promise;
};

function cases(): BenchCase[] {
  const consecutive = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 5 } });
  const countWindow = circuitBreaker({
    strategy: { kind: 'count-window', size: 100, minimumCalls: 20 },
  });
  const timeWindow = circuitBreaker({
    strategy: { kind: 'time-window', durationMs: 30_000, minimumCalls: 20 },
  });
  const ourTimeout = timeout(1_000);
  const ourCooperative = timeout({ timeoutMs: 1_000, strategy: 'cooperative' });
  const ourWrap = wrap(
    retry({ maxAttempts: 3 }),
    circuitBreaker({ strategy: { kind: 'consecutive', threshold: 5 }, halfOpenAfterMs: 10_000 }),
    timeout({ timeoutMs: 1_000, strategy: 'cooperative' }),
  );

  const theirBreaker = cockatielBreaker(handleAll, {
    halfOpenAfter: 10_000,
    breaker: new ConsecutiveBreaker(5),
  });
  const theirCooperative = cockatielTimeout(1_000, TimeoutStrategy.Cooperative);
  const theirAggressive = cockatielTimeout(1_000, TimeoutStrategy.Aggressive);
  const theirWrap = cockatielWrap(
    cockatielRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }),
    cockatielBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
    cockatielTimeout(1_000, TimeoutStrategy.Cooperative),
  );
  const opossum = new CircuitBreaker(noop, { timeout: false, resetTimeout: 10_000 });
  const opossumTimeout = new CircuitBreaker(noop, { timeout: 1_000, resetTimeout: 10_000 });

  return [
    { name: 'bare call', fn: () => noop() },
    { name: 'observer floor (promise.then)', fn: observeOnly },
    { name: 'postern breaker (consecutive)', fn: () => consecutive.execute(noop) },
    { name: 'postern breaker (count window)', fn: () => countWindow.execute(noop) },
    { name: 'postern breaker (time window)', fn: () => timeWindow.execute(noop) },
    { name: 'cockatiel breaker (consecutive)', fn: () => theirBreaker.execute(noop) },
    { name: 'opossum breaker (no timeout)', fn: () => opossum.fire() },
    { name: 'opossum breaker (timeout)', fn: () => opossumTimeout.fire() },
    { name: 'postern timeout (aggressive)', fn: () => ourTimeout.execute(noop) },
    { name: 'postern timeout (cooperative)', fn: () => ourCooperative.execute(noop) },
    { name: 'postern timeout (fn reads signal)', fn: () => ourCooperative.execute(readsSignal) },
    { name: 'cockatiel timeout (aggressive)', fn: () => theirAggressive.execute(noop) },
    { name: 'cockatiel timeout (cooperative)', fn: () => theirCooperative.execute(noop) },
    { name: 'postern wrap(retry, breaker, timeout)', fn: () => ourWrap.execute(noop) },
    { name: 'cockatiel wrap(retry, breaker, timeout)', fn: () => theirWrap.execute(noop) },
  ];
}

const byName = (results: BenchResult[], name: string): BenchResult => {
  const found = results.find((result) => result.name === name);
  if (found === undefined) throw new Error(`no result named ${name}`);
  return found;
};

const results: BenchResult[] = [];
const ratios: Record<string, number> = {};
for (const concurrency of [1, 100]) {
  progress(`concurrency ${concurrency}`);
  const label = concurrency === 1 ? 'sequential' : `${concurrency} in flight`;
  const measured = (
    await suite(cases(), { durationMs: 1_400, warmupMs: 150, rounds: 15, concurrency })
  ).map((result) => ({
    ...result,
    name: `${result.name} [${label}]`,
  }));
  results.push(...measured);
  const get = (name: string): BenchResult => byName(measured, `${name} [${label}]`);
  const tag = concurrency === 1 ? '' : ` [${label}]`;
  ratios[`postern breaker/cockatiel breaker${tag}`] = ratio(
    get('postern breaker (consecutive)'),
    get('cockatiel breaker (consecutive)'),
  );
  ratios[`postern breaker/opossum breaker${tag}`] = ratio(
    get('postern breaker (consecutive)'),
    get('opossum breaker (no timeout)'),
  );
  ratios[`postern breaker/bare${tag}`] = ratio(
    get('postern breaker (consecutive)'),
    get('bare call'),
  );
  ratios[`postern breaker/observer floor${tag}`] = ratio(
    get('postern breaker (consecutive)'),
    get('observer floor (promise.then)'),
  );
  ratios[`cockatiel breaker/observer floor${tag}`] = ratio(
    get('cockatiel breaker (consecutive)'),
    get('observer floor (promise.then)'),
  );
  ratios[`postern timeout/cockatiel timeout (cooperative)${tag}`] = ratio(
    get('postern timeout (cooperative)'),
    get('cockatiel timeout (cooperative)'),
  );
  ratios[`postern timeout/cockatiel timeout (aggressive)${tag}`] = ratio(
    get('postern timeout (aggressive)'),
    get('cockatiel timeout (aggressive)'),
  );
  ratios[`postern timeout/opossum breaker with timeout${tag}`] = ratio(
    get('postern timeout (aggressive)'),
    get('opossum breaker (timeout)'),
  );
  ratios[`postern wrap/cockatiel wrap${tag}`] = ratio(
    get('postern wrap(retry, breaker, timeout)'),
    get('cockatiel wrap(retry, breaker, timeout)'),
  );
}

// Cross-check that a loaded machine cannot skew: CPU time per call (process.cpuUsage), sequential,
// median of 3. The harness loop's own cost (performance.now per call) caps every ops/s ratio near
// bare/peer; CPU time per call minus the bare call's shows what each library adds.
async function cpuMicrosPerCall(fn: () => unknown, calls: number): Promise<number> {
  const samples: number[] = [];
  for (let round = 0; round < 3; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < calls; i++) await fn();
    const used = process.cpuUsage(start);
    samples.push((used.user + used.system) / calls);
  }
  samples.sort((a, b) => a - b);
  return Number(samples[1]!.toFixed(4));
}

progress('CPU time per call');
const cpu: Record<string, number> = {};
for (const entry of cases()) {
  const measured = byName(results, `${entry.name} [sequential]`);
  const calls = Math.max(2_000, Math.min(200_000, Math.round((measured.opsPerSec ?? 0) * 0.1)));
  cpu[entry.name] = await cpuMicrosPerCall(entry.fn, calls);
  measured['cpuUsPerCall'] = cpu[entry.name];
}
const cpuRatio = (ours: string, peer: string): number =>
  Number((cpu[peer]! / cpu[ours]!).toFixed(2));
const addedRatio = (ours: string, peer: string): number => {
  const bare = cpu['bare call']!;
  return Number(((cpu[peer]! - bare) / Math.max(cpu[ours]! - bare, 0.001)).toFixed(2));
};
ratios['postern breaker/cockatiel breaker (CPU time)'] = cpuRatio(
  'postern breaker (consecutive)',
  'cockatiel breaker (consecutive)',
);
ratios['postern breaker/opossum breaker (CPU time)'] = cpuRatio(
  'postern breaker (consecutive)',
  'opossum breaker (no timeout)',
);
ratios['postern breaker/observer floor (CPU time)'] = cpuRatio(
  'postern breaker (consecutive)',
  'observer floor (promise.then)',
);
ratios['postern breaker/cockatiel breaker (CPU time added to a bare call)'] = addedRatio(
  'postern breaker (consecutive)',
  'cockatiel breaker (consecutive)',
);
ratios['postern breaker/opossum breaker (CPU time added to a bare call)'] = addedRatio(
  'postern breaker (consecutive)',
  'opossum breaker (no timeout)',
);
ratios['postern timeout/cockatiel timeout (cooperative, CPU time)'] = cpuRatio(
  'postern timeout (cooperative)',
  'cockatiel timeout (cooperative)',
);
ratios['postern timeout/opossum breaker with timeout (CPU time)'] = cpuRatio(
  'postern timeout (aggressive)',
  'opossum breaker (timeout)',
);
ratios['postern wrap/cockatiel wrap (CPU time)'] = cpuRatio(
  'postern wrap(retry, breaker, timeout)',
  'cockatiel wrap(retry, breaker, timeout)',
);

if (observed === 0) throw new Error('the observer floor never ran its reaction');
report('@postern/resilience vs cockatiel 3.2.1 and opossum 9.0.0 (async no-op)', results, ratios);
// opossum keeps interval timers for its rolling statistics; end the process once the report is out.
process.exit(0);
