import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { expect } from 'vitest';
import { AuthError, Argon2Hasher, AuthService, type AuthStore } from '../src/index.js';

const GRACE_MS = 10_000;

type Step = { kind: 'refresh'; pick: number } | { kind: 'wait'; ms: number };

/**
 * Drives `AuthService.refresh` on a fresh store with random sequences of refreshes (with any token
 * issued so far) and waits, and checks every outcome against a model of rotation with reuse
 * detection and a grace window. The waits move the service clock only. `graceClock: 'store'` is
 * for a store that measures the grace window on its own clock (Redis TIME): a whole run takes far
 * less than the window in real time, so there the parent is always inside it.
 */
export async function checkRotationModel(
  createStore: () => AuthStore,
  numRuns: number,
  graceClock: 'caller' | 'store' = 'caller',
): Promise<void> {
  const hasher = new Argon2Hasher({ memoryCost: 1024, timeCost: 1 });
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.record({ kind: fc.constant('refresh' as const), pick: fc.nat() }),
          fc.record({
            kind: fc.constant('wait' as const),
            ms: fc.integer({ min: 0, max: 15_000 }),
          }),
        ),
        { minLength: 1, maxLength: 25 },
      ),
      async (steps: Step[]) => {
        let now = 1_800_000_000_000;
        const service = new AuthService({
          store: createStore(),
          hasher,
          tokens: {
            issuer: 'i',
            audience: 'a',
            keys: [{ kid: 'k', alg: 'HS256', secret: randomBytes(32) }],
          },
          clock: { now: () => now },
          requireVerifiedEmail: false,
          sessions: { reuseGraceMs: GRACE_MS },
        });
        await service.register({
          email: 'model@example.test',
          password: 'quiet harbour lights 12',
        });
        const first = await service.login({
          email: 'model@example.test',
          password: 'quiet harbour lights 12',
        });
        // The model: every token ever issued, the live one, its parent, and whether the family is dead.
        const issued = [first.refreshToken];
        let live = first.refreshToken;
        let parent: string | undefined;
        let rotatedAt = 0;
        let revoked = false;
        for (const step of steps) {
          if (step.kind === 'wait') {
            now += step.ms;
            continue;
          }
          const token = issued[step.pick % issued.length]!;
          let outcome: string;
          let returned: string | undefined;
          try {
            returned = (await service.refresh(token)).refreshToken;
            outcome = 'ok';
          } catch (error) {
            if (!AuthError.isInstance(error)) throw error;
            outcome = error.code;
          }
          if (revoked) {
            expect(outcome).toBe('TOKEN_INVALID');
          } else if (token === live) {
            expect(outcome).toBe('ok');
            expect(issued).not.toContain(returned);
            parent = live;
            live = returned!;
            rotatedAt = now;
            issued.push(live);
          } else if (token === parent && (graceClock === 'store' || now - rotatedAt <= GRACE_MS)) {
            expect(outcome).toBe('ok');
            expect(returned).toBe(live);
          } else {
            expect(outcome).toBe('TOKEN_REUSED');
            revoked = true;
          }
        }
      },
    ),
    { numRuns },
  );
}
