import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { sql } from 'kysely';
import type { Database, DestinationsTable } from './db/schema.js';
import { ServerError } from './errors.js';
import type { DestinationPolicy } from './ports.js';

/** A destination mailbox as the API shows it (never its token or token hash). */
export interface Destination {
  id: string;
  address: string;
  verified: boolean;
  /** Epoch ms of the confirmation, or null while unverified. */
  verifiedAt: number | null;
  /**
   * True for an address an alias forwarded to before destinations had to be verified (migration
   * 0004): those aliases keep forwarding to it, but no alias may newly use it until it is verified.
   */
  grandfathered: boolean;
  createdAt: number;
}

/** What `DestinationRepository.add` did. */
export interface AddedDestination {
  destination: Destination;
  /** False when the user had added the address before. */
  created: boolean;
  /** The token to mail to the address; null when it is verified already (nothing to send). */
  token: string | null;
}

/** Options of `DestinationRepository`. */
export interface DestinationRepositoryOptions {
  /** Epoch-ms clock. Default: Date.now. */
  now?: () => number;
  /** How long a mailed verification token works, in ms. Default: 86_400_000 (24 h). */
  tokenTtlMs?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** `<destination id>.<32 random bytes, base64url>`: the shape of the account tokens. */
const TOKEN = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function toDestination(row: Selectable<DestinationsTable>): Destination {
  return {
    id: row.id,
    address: row.address,
    verified: row.verified_at !== null,
    verifiedAt: row.verified_at,
    grandfathered: row.verified_at === null && row.grandfathered_at !== null,
    createdAt: row.created_at,
  };
}

function tokenInvalid(): ServerError {
  return new ServerError('TOKEN_INVALID', 'the token is invalid or was already used', {
    status: 400,
    field: 'token',
  });
}

/**
 * The mailboxes each user has proven they may forward to. A destination is verified by spending a
 * single-use token mailed to it; the account's own address (verified at sign-up) needs no row.
 */
export class DestinationRepository implements DestinationPolicy {
  readonly #db: Kysely<Database>;
  readonly #now: () => number;
  readonly #tokenTtlMs: number;

  constructor(db: Kysely<Database>, options: DestinationRepositoryOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#tokenTtlMs = options.tokenTtlMs ?? 86_400_000;
  }

  /**
   * Adds an unverified destination and returns a token to mail to it. Adding it again issues a new
   * token (the previous one stops working) unless it is verified already.
   */
  async add(userId: string, address: string): Promise<AddedDestination> {
    const normalized = address.toLowerCase();
    const now = this.#now();
    const id = randomUUID();
    const token = this.#newToken(id);
    const inserted = await this.#db
      .insertInto('destinations')
      .values({
        id,
        user_id: userId,
        address: normalized,
        verified_at: null,
        grandfathered_at: null,
        token_hash: hashToken(token),
        token_expires_at: now + this.#tokenTtlMs,
        created_at: now,
      })
      .onConflict((oc) => oc.columns(['user_id', 'address']).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted !== undefined)
      return { destination: toDestination(inserted), created: true, token };
    const existing = await this.#db
      .selectFrom('destinations')
      .selectAll()
      .where('user_id', '=', userId)
      .where('address', '=', normalized)
      .executeTakeFirstOrThrow();
    if (existing.verified_at !== null)
      return { destination: toDestination(existing), created: false, token: null };
    const again = this.#newToken(existing.id);
    const updated = await this.#db
      .updateTable('destinations')
      .set({ token_hash: hashToken(again), token_expires_at: now + this.#tokenTtlMs })
      .where('id', '=', existing.id)
      .where('verified_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    // Verified between the two statements: nothing left to confirm.
    if (updated === undefined) return this.add(userId, normalized);
    return { destination: toDestination(updated), created: false, token: again };
  }

  /**
   * Spends a verification token of one of the user's destinations and marks it verified.
   * `TOKEN_INVALID` for a malformed, wrong, spent or foreign token; `TOKEN_EXPIRED` past its lifetime.
   */
  async verify(userId: string, token: string): Promise<Destination> {
    return toDestination(await this.#spend(token, userId));
  }

  /**
   * Spends a verification token on its own, as the mailbox's owner does without an account here;
   * returns the destination and the user it belongs to. Same errors as `verify`.
   */
  async confirm(token: string): Promise<{ destination: Destination; userId: string }> {
    const row = await this.#spend(token, null);
    return { destination: toDestination(row), userId: row.user_id };
  }

  async #spend(token: string, userId: string | null): Promise<Selectable<DestinationsTable>> {
    const match = TOKEN.exec(token);
    const id = match?.[1];
    if (id === undefined || !UUID.test(id)) throw tokenInvalid();
    let query = this.#db.selectFrom('destinations').selectAll().where('id', '=', id);
    if (userId !== null) query = query.where('user_id', '=', userId);
    const row = await query.executeTakeFirst();
    // The id is not secret; the 32 random bytes are, and only their hash is compared, in constant time.
    if (row?.token_hash === null || row?.token_hash === undefined) throw tokenInvalid();
    const expected = Buffer.from(row.token_hash, 'hex');
    const presented = Buffer.from(hashToken(token), 'hex');
    if (expected.length !== presented.length || !timingSafeEqual(expected, presented))
      throw tokenInvalid();
    const now = this.#now();
    if (row.token_expires_at === null || row.token_expires_at <= now)
      throw new ServerError('TOKEN_EXPIRED', 'the token has expired; add the address again', {
        status: 400,
        field: 'token',
      });
    // Conditional on the hash just checked, so two requests spending one token cannot both win.
    const updated = await this.#db
      .updateTable('destinations')
      .set({ verified_at: now, grandfathered_at: null, token_hash: null, token_expires_at: null })
      .where('id', '=', row.id)
      .where('token_hash', '=', row.token_hash)
      .returningAll()
      .executeTakeFirst();
    if (updated === undefined) throw tokenInvalid();
    return updated;
  }

  /** The user's destinations, oldest first. */
  async list(userId: string): Promise<Destination[]> {
    const rows = await this.#db
      .selectFrom('destinations')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toDestination);
  }

  /**
   * Deletes one of the user's destinations; `NOT_FOUND` if it is not theirs, `CONFLICT` while one of
   * their aliases still forwards to it (change those aliases first).
   */
  async delete(userId: string, destinationId: string): Promise<void> {
    const deleted = await this.#db.transaction().execute(async (trx) => {
      // FOR UPDATE waits for any alias write holding the row FOR SHARE (see `assertUsable`) to
      // commit; the check below then runs on a fresh snapshot (READ COMMITTED) and sees that alias.
      const row = await trx
        .selectFrom('destinations')
        .select(['id', 'address'])
        .where('id', '=', destinationId)
        .where('user_id', '=', userId)
        .forUpdate()
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const result = await trx
        .deleteFrom('destinations')
        .where('id', '=', row.id)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('aliases')
                .select('aliases.id')
                .where('aliases.user_id', '=', userId)
                .where(sql<boolean>`${row.address} = ANY(aliases.destinations)`),
            ),
          ),
        )
        .executeTakeFirst();
      return result.numDeletedRows;
    });
    if (deleted === undefined)
      throw new ServerError('NOT_FOUND', 'no such destination', { status: 404 });
    if (deleted === 0n)
      throw new ServerError(
        'CONFLICT',
        'an alias still forwards to this destination; change or delete it first',
        { status: 409, field: 'id' },
      );
  }

  /**
   * Every address must be a verified destination of the user or the account's own address. Inside
   * `transaction`, the destination rows are locked FOR SHARE until it ends: a concurrent `delete`
   * waits for the alias to be written and then sees it, or wins first and the row is gone here.
   */
  async assertUsable(
    userId: string,
    addresses: readonly string[],
    transaction?: Transaction<Database>,
  ): Promise<void> {
    const wanted = [...new Set(addresses.map((address) => address.toLowerCase()))].sort();
    if (wanted.length === 0) return;
    const db = transaction ?? this.#db;
    const user = await db
      .selectFrom('users')
      .select('email')
      .where('id', '=', userId)
      .executeTakeFirst();
    let query = db
      .selectFrom('destinations')
      .select('address')
      .where('user_id', '=', userId)
      .where('address', 'in', wanted)
      .where('verified_at', 'is not', null)
      // Locked in one order, so two alias writes sharing destinations never deadlock a delete.
      .orderBy('address');
    if (transaction !== undefined) query = query.forShare();
    const verified = await query.execute();
    const usable = new Set(verified.map((row) => row.address));
    if (user !== undefined) usable.add(user.email.toLowerCase());
    const refused = wanted.find((address) => !usable.has(address));
    if (refused !== undefined)
      throw new ServerError(
        'VALIDATION_FAILED',
        `${refused} is not a verified destination: add it with POST /destinations and confirm the mailed token`,
        { status: 400, field: 'destinations' },
      );
  }

  #newToken(destinationId: string): string {
    return `${destinationId}.${randomBytes(32).toString('base64url')}`;
  }
}
