/**
 * @postern/auth: login (argon2id at the default m=19456 KiB, t=2, p=1) and refresh rotation on
 * Redis, at concurrency 1 and 32, each against a plain baseline in the same run:
 * - login with the default binding (npm `argon2`) vs with `@node-rs/argon2`, and each vs a bare
 *   verify of the same hash in that binding (the floor any password login pays);
 * - refresh vs a naive, non-atomic rotation (GET the token hash, compare, SET a new one: two
 *   round trips, no reuse detection, no JWT), what hand-written code usually does.
 * Also records event-loop delay p99 while 32 logins run at once.
 */
import { randomBytes, createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { AuthService, Argon2Hasher } from '@postern/auth';
import { nodeRsArgon2 } from '@postern/auth/node-rs-argon2';
import { RedisAuthStore } from '@postern/auth/redis';
import { type BenchResult, progress, ratio, report, suite } from './harness.ts';

// The bare binding our package uses, resolved through it (the bench does not depend on argon2 itself).
const argon2 = createRequire(import.meta.resolve('@postern/auth'))('argon2') as {
  hash(password: string, options: Record<string, unknown>): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  argon2id: number;
};

const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const prefix = `bench:auth:${randomBytes(6).toString('hex')}:`;
const PASSWORD = 'benchmark password 2026';
// One account per concurrent login: logins of one account in flight at once count as attempts
// (past lockout.freeAttempts they are refused, since they cannot be told from a burst of guesses),
// so concurrency here is across users, as a service sees it.
const EMAILS = Array.from({ length: 32 }, (_, index) => `runner${index}@example.test`);

const tokens = {
  issuer: 'https://bench.test',
  audience: 'bench',
  keys: [{ kid: 'k1', alg: 'HS256' as const, secret: randomBytes(32) }],
};
const auth = new AuthService({
  store: new RedisAuthStore({ redis, prefix }),
  hasher: new Argon2Hasher(),
  tokens,
  requireVerifiedEmail: false,
});
const rustBinding = nodeRsArgon2();
const authRust = new AuthService({
  store: new RedisAuthStore({ redis, prefix }),
  hasher: new Argon2Hasher({ binding: rustBinding }),
  tokens,
  requireVerifiedEmail: false,
});

async function cleanup(): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

async function main(): Promise<void> {
  for (const email of EMAILS) await auth.register({ email, password: PASSWORD });
  const freeAccounts = [...EMAILS];
  /** Logs in with an account no other call is using (there are as many as the concurrency). */
  const withAccount = async (service: AuthService): Promise<void> => {
    const email = freeAccounts.pop()!;
    try {
      await service.login({ email, password: PASSWORD });
    } finally {
      freeAccounts.push(email);
    }
  };
  const hash = await argon2.hash(PASSWORD, {
    type: argon2.argon2id,
    memoryCost: 19_456,
    timeCost: 2,
    parallelism: 1,
  });
  const login = () => withAccount(auth);
  const loginRust = () => withAccount(authRust);
  const bareVerify = () => argon2.verify(hash, PASSWORD);
  const bareVerifyRust = () => rustBinding.verify(hash, PASSWORD, undefined);

  // Token pools: each call takes a token, refreshes it, and returns the successor.
  const ours: string[] = [];
  for (const email of EMAILS)
    ours.push((await auth.login({ email, password: PASSWORD })).refreshToken);
  const refresh = async () => {
    const token = ours.pop()!;
    const next = await auth.refresh(token);
    ours.push(next.refreshToken);
  };
  const naive: Array<{ key: string; token: string }> = [];
  const sha = (value: string) => createHash('sha256').update(value).digest('base64url');
  for (let index = 0; index < 32; index += 1) {
    const token = randomBytes(32).toString('base64url');
    const key = `${prefix}naive:${index}`;
    await redis.set(key, sha(token));
    naive.push({ key, token });
  }
  const naiveRefresh = async () => {
    const entry = naive.pop()!;
    const stored = await redis.get(entry.key);
    if (stored !== sha(entry.token)) throw new Error('naive baseline lost its token');
    const token = randomBytes(32).toString('base64url');
    await redis.set(entry.key, sha(token));
    naive.push({ key: entry.key, token });
  };

  const results: BenchResult[] = [];
  const login1 = { durationMs: 2_000, warmupMs: 200, rounds: 3, concurrency: 1 };
  const login32 = { ...login1, concurrency: 32 };
  progress('login, concurrency 1');
  results.push(
    ...(await suite(
      [
        { name: 'login argon2 c=1', fn: login },
        { name: 'login node-rs c=1', fn: loginRust },
        { name: 'argon2.verify c=1', fn: bareVerify },
        { name: 'node-rs verify c=1', fn: bareVerifyRust },
      ],
      login1,
    )),
  );

  // A control: the same monitor over the same time with no work of ours, so the figure during the
  // logins can be read against what the machine alone does to the event loop.
  const idle = monitorEventLoopDelay({ resolution: 1 });
  idle.enable();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  idle.disable();
  const idleP99 = Number((idle.percentile(99) / 1e6).toFixed(2));
  progress(`event-loop delay with no work (control): p99 ${idleP99} ms`);
  for (const [name, fn] of [
    ['login argon2 c=32', login],
    ['login node-rs c=32', loginRust],
  ] as const) {
    progress(`${name}, with event-loop delay`);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const [result] = await suite([{ name, fn }], login32);
    delay.disable();
    const p99 = Number((delay.percentile(99) / 1e6).toFixed(2));
    results.push({
      ...result!,
      eventLoopDelayP99Ms: p99,
      eventLoopDelayMaxMs: Number((delay.max / 1e6).toFixed(2)),
      eventLoopDelayP99IdleControlMs: idleP99,
    });
    progress(`event-loop delay during ${name}: p99 ${p99} ms`);
  }
  results.push(
    ...(await suite(
      [
        { name: 'argon2.verify c=32', fn: bareVerify },
        { name: 'node-rs verify c=32', fn: bareVerifyRust },
      ],
      login32,
    )),
  );

  for (const concurrency of [1, 32]) {
    progress(`refresh rotation, concurrency ${concurrency}`);
    results.push(
      ...(await suite(
        [
          { name: `refresh c=${concurrency}`, fn: refresh },
          { name: `naive rotate c=${concurrency}`, fn: naiveRefresh },
        ],
        { durationMs: 2_000, warmupMs: 200, rounds: 3, concurrency },
      )),
    );
  }

  const byName = (name: string) => results.find((result) => result.name === name)!;
  report(
    '@postern/auth: login (two argon2 bindings) and refresh on Redis vs plain baselines',
    results,
    {
      'login node-rs c=1 / login argon2 c=1': ratio(
        byName('login node-rs c=1'),
        byName('login argon2 c=1'),
      ),
      'login node-rs c=32 / login argon2 c=32': ratio(
        byName('login node-rs c=32'),
        byName('login argon2 c=32'),
      ),
      'login argon2 c=1 / argon2.verify c=1': ratio(
        byName('login argon2 c=1'),
        byName('argon2.verify c=1'),
      ),
      'login argon2 c=32 / argon2.verify c=32': ratio(
        byName('login argon2 c=32'),
        byName('argon2.verify c=32'),
      ),
      'node-rs verify c=1 / argon2.verify c=1': ratio(
        byName('node-rs verify c=1'),
        byName('argon2.verify c=1'),
      ),
      'refresh c=1 / naive rotate c=1': ratio(byName('refresh c=1'), byName('naive rotate c=1')),
      'refresh c=32 / naive rotate c=32': ratio(
        byName('refresh c=32'),
        byName('naive rotate c=32'),
      ),
    },
  );
}

try {
  await main();
} finally {
  await cleanup();
  await redis.quit();
}
