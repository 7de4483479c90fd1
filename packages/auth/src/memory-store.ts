import type {
  AttemptReservation,
  AuthStore,
  ConsumeResult,
  FailureRecord,
  NewSession,
  OneTimePurpose,
  ReservedAttempt,
  RotateInput,
  RotateResult,
  SessionRecord,
  UserPatch,
  UserRecord,
} from './store.js';

interface SessionEntry {
  record: SessionRecord;
  /** Hashes of every spent token of this family. */
  spent: Set<string>;
}

/**
 * An `AuthStore` in process memory: for tests, development and single-process apps. Every
 * method completes synchronously inside one call, so compare-and-swap is atomic. State is lost
 * on restart and is not shared between processes: use `RedisAuthStore` for that. The refresh grace
 * window is measured on the `now` each call passes (the service's injectable clock).
 */
export class MemoryAuthStore implements AuthStore {
  readonly #users = new Map<string, UserRecord>();
  readonly #emails = new Map<string, string>();
  readonly #sessions = new Map<string, SessionEntry>();
  readonly #userSessions = new Map<string, Set<string>>();
  readonly #failures = new Map<
    string,
    FailureRecord & { expiresAt: number; inFlight?: Map<string, number> }
  >();
  readonly #oneTime = new Map<string, { tokenHash: string; expiresAt: number }>();
  readonly #cooldowns = new Map<string, number>();
  readonly #maxEntries: number;
  // Sizes at which each map is swept next. After a sweep that leaves many live entries, the next
  // one waits until the map has doubled, so a spray of live keys costs amortised O(1) per key
  // instead of a full scan on every insert.
  readonly #sweepAt = { sessions: 0, failures: 0, cooldowns: 0 };

  /**
   * `maxEntries` (default 10_000): when the counters, cooldowns or sessions grow past it, expired
   * entries are swept, so per-IP counters from a spray cannot grow memory without bound.
   */
  constructor(options: { maxEntries?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#sweepAt.sessions = this.#maxEntries;
    this.#sweepAt.failures = this.#maxEntries;
    this.#sweepAt.cooldowns = this.#maxEntries;
  }

  createUser(user: UserRecord): Promise<boolean> {
    if (this.#emails.has(user.email) || this.#users.has(user.id)) return Promise.resolve(false);
    this.#users.set(user.id, { ...user });
    this.#emails.set(user.email, user.id);
    return Promise.resolve(true);
  }

  getUserById(userId: string): Promise<UserRecord | null> {
    const user = this.#users.get(userId);
    return Promise.resolve(user === undefined ? null : { ...user });
  }

  getUserByEmail(email: string): Promise<UserRecord | null> {
    const id = this.#emails.get(email);
    return id === undefined ? Promise.resolve(null) : this.getUserById(id);
  }

  updateUser(userId: string, patch: UserPatch): Promise<boolean> {
    const user = this.#users.get(userId);
    if (user === undefined) return Promise.resolve(false);
    if (patch.ifPasswordHash !== undefined && user.passwordHash !== patch.ifPasswordHash)
      return Promise.resolve(false);
    if (patch.passwordHash !== undefined) user.passwordHash = patch.passwordHash;
    if (patch.emailVerified !== undefined) user.emailVerified = patch.emailVerified;
    return Promise.resolve(true);
  }

  async deleteUser(userId: string): Promise<boolean> {
    const user = this.#users.get(userId);
    if (user === undefined) return false;
    this.#users.delete(userId);
    this.#emails.delete(user.email);
    await this.deleteUserSessions(userId);
    this.#oneTime.delete(`verify-email:${userId}`);
    this.#oneTime.delete(`reset-password:${userId}`);
    return true;
  }

  createSession(session: NewSession): Promise<void> {
    if (this.#sessions.size >= this.#sweepAt.sessions) {
      for (const [id, entry] of this.#sessions) {
        if (
          session.createdAt >= Math.min(entry.record.idleExpiresAt, entry.record.absoluteExpiresAt)
        )
          this.#removeSession(entry.record.userId, id);
      }
      this.#sweepAt.sessions = this.#nextSweep(this.#sessions.size);
    }
    const record: SessionRecord = {
      id: session.id,
      userId: session.userId,
      createdAt: session.createdAt,
      lastUsedAt: session.createdAt,
      idleExpiresAt: Math.min(session.idleExpiresAt, session.absoluteExpiresAt),
      absoluteExpiresAt: session.absoluteExpiresAt,
      generation: 0,
      tokenHash: session.tokenHash,
      ...(session.ip === undefined ? {} : { ip: session.ip }),
      ...(session.userAgent === undefined ? {} : { userAgent: session.userAgent }),
    };
    this.#sessions.set(session.id, { record, spent: new Set() });
    let ids = this.#userSessions.get(session.userId);
    if (ids === undefined) {
      ids = new Set();
      this.#userSessions.set(session.userId, ids);
    }
    ids.add(session.id);
    return Promise.resolve();
  }

  getSession(sessionId: string): Promise<SessionRecord | null> {
    const entry = this.#sessions.get(sessionId);
    return Promise.resolve(entry === undefined ? null : { ...entry.record });
  }

  rotateRefreshToken(input: RotateInput): Promise<RotateResult> {
    const entry = this.#sessions.get(input.sessionId);
    if (entry === undefined) return Promise.resolve({ status: 'invalid' });
    const session = entry.record;
    const known = session.tokenHash === input.presentedHash || entry.spent.has(input.presentedHash);
    if (!known) return Promise.resolve({ status: 'invalid' });
    if (input.now >= session.idleExpiresAt || input.now >= session.absoluteExpiresAt) {
      // As if already evicted, which is what RedisAuthStore's native expiry has usually done.
      this.#removeSession(session.userId, session.id);
      return Promise.resolve({ status: 'invalid' });
    }
    if (session.tokenHash === input.presentedHash) {
      entry.spent.add(session.tokenHash);
      session.parentHash = session.tokenHash;
      session.tokenHash = input.nextHash;
      session.successorSealed = input.nextSealed;
      session.rotatedAt = input.now;
      session.lastUsedAt = input.now;
      session.generation += 1;
      session.idleExpiresAt = Math.min(input.idleExpiresAt, session.absoluteExpiresAt);
      return Promise.resolve({ status: 'rotated', session: { ...session } });
    }
    if (
      session.parentHash === input.presentedHash &&
      session.rotatedAt !== undefined &&
      session.successorSealed !== undefined &&
      input.graceMs > 0 &&
      input.now - session.rotatedAt <= input.graceMs
    ) {
      return Promise.resolve({
        status: 'grace',
        session: { ...session },
        successorSealed: session.successorSealed,
      });
    }
    this.#removeSession(session.userId, session.id);
    return Promise.resolve({ status: 'reused', userId: session.userId });
  }

  listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const sessions: SessionRecord[] = [];
    for (const id of this.#userSessions.get(userId) ?? []) {
      const entry = this.#sessions.get(id);
      if (entry === undefined) continue;
      if (now >= entry.record.idleExpiresAt || now >= entry.record.absoluteExpiresAt) {
        this.#removeSession(userId, id);
        continue;
      }
      sessions.push({ ...entry.record });
    }
    return Promise.resolve(
      sessions.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)),
    );
  }

  deleteSession(userId: string, sessionId: string, now: number = Date.now()): Promise<boolean> {
    const entry = this.#sessions.get(sessionId);
    if (entry?.record.userId !== userId) return Promise.resolve(false);
    this.#removeSession(userId, sessionId);
    return Promise.resolve(!isDead(entry.record, now));
  }

  deleteUserSessions(
    userId: string,
    exceptSessionId?: string,
    now: number = Date.now(),
  ): Promise<number> {
    let count = 0;
    for (const id of [...(this.#userSessions.get(userId) ?? [])]) {
      if (id === exceptSessionId) continue;
      const entry = this.#sessions.get(id);
      // A dead session is not counted: RedisAuthStore has usually let it expire already.
      if (entry !== undefined && !isDead(entry.record, now)) count += 1;
      this.#removeSession(userId, id);
    }
    return Promise.resolve(count);
  }

  recordFailure(key: string, now: number, windowMs: number): Promise<FailureRecord> {
    const current = this.#failures.get(key);
    const count =
      current !== undefined && now - current.lastFailureAt < windowMs ? current.count + 1 : 1;
    if (current === undefined) this.#sweepFailures(now);
    this.#failures.set(key, {
      count,
      lastFailureAt: now,
      expiresAt: now + windowMs,
      ...(current?.inFlight === undefined ? {} : { inFlight: current.inFlight }),
    });
    return Promise.resolve({ count, lastFailureAt: now });
  }

  getFailures(key: string, now: number, windowMs: number): Promise<FailureRecord | null> {
    const current = this.#failures.get(key);
    if (current === undefined || now - current.lastFailureAt >= windowMs)
      return Promise.resolve(null);
    return Promise.resolve({ count: current.count, lastFailureAt: current.lastFailureAt });
  }

  clearFailures(key: string): Promise<void> {
    this.#failures.delete(key);
    return Promise.resolve();
  }

  reserveAttempt(key: string, reservation: AttemptReservation): Promise<ReservedAttempt> {
    const { id, now, windowMs, abandonAfterMs } = reservation;
    const current = this.#failures.get(key);
    if (current === undefined) this.#sweepFailures(now);
    const inFlight = current?.inFlight ?? new Map<string, number>();
    for (const [other, at] of inFlight) if (now - at > abandonAfterMs) inFlight.delete(other);
    const running = current !== undefined && now - current.lastFailureAt < windowMs;
    const others = inFlight.size;
    // A counter that is not running starts again from the attempts still in flight.
    const count = (running ? current.count : others) + 1;
    const lastFailureAt = running ? current.lastFailureAt : now;
    inFlight.set(id, now);
    this.#failures.set(key, {
      count,
      lastFailureAt,
      expiresAt: Math.max(current?.expiresAt ?? 0, now + windowMs),
      inFlight,
    });
    return Promise.resolve({ count, lastFailureAt, inFlight: others });
  }

  settleAttempt(key: string, reservation: AttemptReservation, failed: boolean): Promise<void> {
    const { id, now, windowMs } = reservation;
    const current = this.#failures.get(key);
    const held = current?.inFlight?.delete(id) ?? false;
    const gone =
      current === undefined ||
      (now - current.lastFailureAt >= windowMs && (current.inFlight?.size ?? 0) === 0);
    if (failed) {
      if (current === undefined || gone)
        this.#failures.set(key, { count: 1, lastFailureAt: now, expiresAt: now + windowMs });
      else {
        current.lastFailureAt = Math.max(current.lastFailureAt, now);
        current.expiresAt = Math.max(current.expiresAt, now + windowMs);
      }
    } else if (held && current !== undefined) {
      current.count -= 1;
      if (current.count <= 0) this.#failures.delete(key);
    }
    return Promise.resolve();
  }

  putOneTimeToken(
    purpose: OneTimePurpose,
    userId: string,
    tokenHash: string,
    expiresAt: number,
  ): Promise<void> {
    this.#oneTime.set(`${purpose}:${userId}`, { tokenHash, expiresAt });
    return Promise.resolve();
  }

  consumeOneTimeToken(
    purpose: OneTimePurpose,
    userId: string,
    tokenHash: string,
    now: number,
  ): Promise<ConsumeResult> {
    const key = `${purpose}:${userId}`;
    const current = this.#oneTime.get(key);
    if (current?.tokenHash !== tokenHash) return Promise.resolve('invalid');
    this.#oneTime.delete(key);
    // An expired token answers like a missing one, which is what RedisAuthStore's expiry leaves.
    return Promise.resolve(now >= current.expiresAt ? 'invalid' : 'ok');
  }

  deleteOneTimeToken(purpose: OneTimePurpose, userId: string): Promise<void> {
    this.#oneTime.delete(`${purpose}:${userId}`);
    return Promise.resolve();
  }

  acquireCooldown(key: string, now: number, cooldownMs: number): Promise<boolean> {
    const until = this.#cooldowns.get(key);
    if (until !== undefined && now < until) return Promise.resolve(false);
    if (until === undefined && this.#cooldowns.size >= this.#sweepAt.cooldowns) {
      for (const [entryKey, entryUntil] of this.#cooldowns)
        if (now >= entryUntil) this.#cooldowns.delete(entryKey);
      this.#sweepAt.cooldowns = this.#nextSweep(this.#cooldowns.size);
    }
    this.#cooldowns.set(key, now + cooldownMs);
    return Promise.resolve(true);
  }

  /** How many counters, cooldowns and sessions are held (for tests and monitoring). */
  get size(): { failures: number; cooldowns: number; sessions: number } {
    return {
      failures: this.#failures.size,
      cooldowns: this.#cooldowns.size,
      sessions: this.#sessions.size,
    };
  }

  #sweepFailures(now: number): void {
    if (this.#failures.size < this.#sweepAt.failures) return;
    for (const [entryKey, entry] of this.#failures)
      if (now >= entry.expiresAt) this.#failures.delete(entryKey);
    this.#sweepAt.failures = this.#nextSweep(this.#failures.size);
  }

  #nextSweep(liveEntries: number): number {
    return Math.max(this.#maxEntries, liveEntries * 2);
  }

  #removeSession(userId: string, sessionId: string): void {
    this.#sessions.delete(sessionId);
    const ids = this.#userSessions.get(userId);
    ids?.delete(sessionId);
    if (ids?.size === 0) this.#userSessions.delete(userId);
  }
}

function isDead(session: SessionRecord, now: number): boolean {
  return now >= session.idleExpiresAt || now >= session.absoluteExpiresAt;
}
