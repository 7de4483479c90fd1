import type { Kysely } from 'kysely';
import type { Database } from './db/schema.js';

/** One audit entry: who did what, under which request. Never holds a secret. */
export interface AuditEntry {
  userId: string | null;
  action: string;
  requestId?: string;
  detail?: Record<string, string | number | boolean | null>;
}

/** Append-only audit log in PostgreSQL; a user's entries are deleted with the user. */
export class AuditLog {
  readonly #db: Kysely<Database>;
  readonly #now: () => number;

  constructor(db: Kysely<Database>, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  /** Appends one entry. */
  async append(entry: AuditEntry): Promise<void> {
    await this.#db
      .insertInto('audit_log')
      .values({
        user_id: entry.userId,
        action: entry.action,
        request_id: entry.requestId ?? null,
        detail: JSON.stringify(entry.detail ?? {}),
        created_at: this.#now(),
      })
      .execute();
  }

  /** A user's entries, newest first. */
  async forUser(
    userId: string,
    limit = 100,
  ): Promise<{ action: string; requestId: string | null; createdAt: number }[]> {
    const rows = await this.#db
      .selectFrom('audit_log')
      .select(['action', 'request_id', 'created_at'])
      .where('user_id', '=', userId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((row) => ({
      action: row.action,
      requestId: row.request_id,
      createdAt: row.created_at,
    }));
  }
}
