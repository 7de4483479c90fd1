import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BrokenCircuitError, circuitBreaker } from './index.js';
import { ManualClock } from './testing.js';

type Step = { kind: 'success' } | { kind: 'failure' } | { kind: 'wait'; ms: number };

/** The reference: a breaker as simple as it can be written, consecutive strategy, one probe. */
class ModelBreaker {
  state: 'closed' | 'open' | 'half-open' = 'closed';
  private failures = 0;
  private openedAt = 0;
  private successes = 0;
  constructor(
    private readonly threshold: number,
    private readonly halfOpenAfterMs: number,
    private readonly successesToClose: number,
  ) {}

  /** Returns whether the call ran. */
  call(now: number, succeeds: boolean): boolean {
    if (this.state === 'open' && now - this.openedAt >= this.halfOpenAfterMs) {
      this.state = 'half-open';
      this.successes = 0;
    }
    if (this.state === 'open') return false;
    if (this.state === 'half-open') {
      if (succeeds) {
        this.successes++;
        if (this.successes >= this.successesToClose) {
          this.state = 'closed';
          this.failures = 0;
        }
      } else {
        this.state = 'open';
        this.openedAt = now;
      }
      return true;
    }
    if (succeeds) this.failures = 0;
    else if (++this.failures >= this.threshold) {
      this.state = 'open';
      this.openedAt = now;
      this.failures = 0;
    }
    return true;
  }

  observed(now: number): string {
    if (this.state === 'open' && now - this.openedAt >= this.halfOpenAfterMs) return 'half-open';
    return this.state;
  }
}

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.constant<Step>({ kind: 'success' }),
  fc.constant<Step>({ kind: 'failure' }),
  fc.integer({ min: 1, max: 200 }).map((ms): Step => ({ kind: 'wait', ms })),
);

describe('circuit breaker against a reference model', () => {
  it('agrees with the model on every random sequence of successes, failures and time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(stepArbitrary, { maxLength: 80 }),
        async (threshold, halfOpenAfterMs, successesToClose, steps) => {
          const clock = new ManualClock(1_000);
          const breaker = circuitBreaker({
            clock,
            strategy: { kind: 'consecutive', threshold },
            halfOpenAfterMs,
            successesToClose,
          });
          const model = new ModelBreaker(threshold, halfOpenAfterMs, successesToClose);
          for (const step of steps) {
            if (step.kind === 'wait') {
              clock.advance(step.ms);
            } else {
              const succeeds = step.kind === 'success';
              const expectedToRun = model.call(clock.now(), succeeds);
              let ran = false;
              const outcome = await breaker
                .execute(() => {
                  ran = true;
                  return succeeds ? Promise.resolve('ok') : Promise.reject(new Error('fail'));
                })
                .then(
                  () => 'ok',
                  (error: unknown) =>
                    BrokenCircuitError.isInstance(error) ? 'rejected' : 'failed',
                );
              expect(ran).toBe(expectedToRun);
              expect(outcome).toBe(expectedToRun ? (succeeds ? 'ok' : 'failed') : 'rejected');
            }
            expect(breaker.state).toBe(model.observed(clock.now()));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Reference for the count-window strategy: the last `size` outcomes, kept in a plain array. */
class WindowModel {
  state: 'closed' | 'open' | 'half-open' = 'closed';
  private outcomes: boolean[] = [];
  private openedAt = 0;
  constructor(
    private readonly size: number,
    private readonly minimumCalls: number,
    private readonly rate: number,
    private readonly halfOpenAfterMs: number,
  ) {}

  call(now: number, succeeds: boolean): boolean {
    if (this.state === 'open' && now - this.openedAt >= this.halfOpenAfterMs)
      this.state = 'half-open';
    if (this.state === 'open') return false;
    if (this.state === 'half-open') {
      if (succeeds) {
        this.state = 'closed';
        this.outcomes = [];
      } else {
        this.state = 'open';
        this.openedAt = now;
      }
      return true;
    }
    this.outcomes.push(!succeeds);
    if (this.outcomes.length > this.size) this.outcomes.shift();
    const failures = this.outcomes.filter(Boolean).length;
    if (this.outcomes.length >= this.minimumCalls && failures >= this.rate * this.outcomes.length) {
      this.state = 'open';
      this.openedAt = now;
    }
    return true;
  }

  observed(now: number): string {
    if (this.state === 'open' && now - this.openedAt >= this.halfOpenAfterMs) return 'half-open';
    return this.state;
  }
}

describe('count-window breaker against a reference model', () => {
  it('agrees with the model on every random sequence', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 8 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.array(stepArbitrary, { maxLength: 80 }),
        async (size, minimumSeed, rate, steps) => {
          const minimumCalls = Math.min(size, minimumSeed);
          const clock = new ManualClock(0);
          const breaker = circuitBreaker({
            clock,
            strategy: { kind: 'count-window', size, minimumCalls, failureRateThreshold: rate },
            halfOpenAfterMs: 100,
          });
          const model = new WindowModel(size, minimumCalls, rate, 100);
          for (const step of steps) {
            if (step.kind === 'wait') {
              clock.advance(step.ms);
            } else {
              const succeeds = step.kind === 'success';
              const expectedToRun = model.call(clock.now(), succeeds);
              let ran = false;
              await breaker
                .execute(() => {
                  ran = true;
                  return succeeds ? Promise.resolve() : Promise.reject(new Error('fail'));
                })
                .catch(() => undefined);
              expect(ran).toBe(expectedToRun);
            }
            expect(breaker.state).toBe(model.observed(clock.now()));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
