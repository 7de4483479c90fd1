import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely, Selectable } from 'kysely';
import { isUniqueViolation } from './db/connect.js';
import type { AliasesTable, Database } from './db/schema.js';
import { ServerError } from './errors.js';
import type { DestinationPolicy } from './ports.js';

/** An alias as the API shows it. */
export interface Alias {
  id: string;
  address: string;
  domainId: string;
  enabled: boolean;
  destinations: string[];
  forwardedCount: number;
  rejectedCount: number;
  /** Epoch ms of the last message seen for the alias, or null. */
  lastSeenAt: number | null;
  createdAt: number;
}

/** What `AliasRepository.create` needs. */
export interface NewAlias {
  userId: string;
  domainId: string;
  /** The chosen local part; a random one when absent. */
  localPart?: string;
  destinations: string[];
}

/** A page of aliases and the cursor of the next one (null on the last page). */
export interface AliasPage {
  items: Alias[];
  nextCursor: string | null;
}

/** What the SMTP process needs to route one address. */
export interface AliasRoute {
  id: string;
  userId: string;
  address: string;
  enabled: boolean;
  destinations: string[];
  domain: string;
}

/**
 * Outcome of one message for an alias, counted and logged. `bounced`: a queued delivery failed for
 * good and the sender got a DSN (counters unchanged). `lost`: a queued delivery was dead-lettered
 * and no DSN could be sent (spool gone, null sender, relays refusing the DSN).
 */
export type ForwardOutcome = 'forwarded' | 'rejected' | 'bounced' | 'lost';

/** Options of `AliasRepository`. */
export interface AliasRepositoryOptions {
  /** Epoch-ms clock. Default: Date.now. */
  now?: () => number;
  /** Random local-part generator. Default: 10 base32 characters from crypto.randomBytes. */
  randomLocalPart?: () => string;
  /**
   * Asked before an alias gets destinations (create, or update of `destinations`): the API passes
   * the `DestinationRepository`, so nobody forwards to a mailbox that did not agree. Default: none
   * (every address accepted), for seeding and tools that are not the API.
   */
  destinations?: DestinationPolicy;
}

const LOCAL_PART = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;
/** Addresses the SMTP side reads as SRS bounce addresses: an alias there could never receive mail. */
const SRS_LOCAL_PART = /^srs[01][=+-]/;
/**
 * Role addresses of the shared domain that belong to its operator: RFC 2142 mailboxes, the DSN and
 * system-mail senders, and the addresses certificate authorities accept for domain validation
 * (CA/B Forum BR 3.2.2.4.4). A user holding one would get the service's abuse reports, bounces of
 * system mail (with their tokens), or a TLS certificate for the shared domain.
 */
const RESERVED_SHARED_LOCAL_PARTS: ReadonlySet<string> = new Set([
  'postmaster',
  'abuse',
  'mailer-daemon',
  'no-reply',
  'noreply',
  'hostmaster',
  'webmaster',
  'admin',
  'administrator',
  'root',
  'security',
  'support',
  'noc',
  'info',
]);
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function defaultRandomLocalPart(): string {
  const bytes = randomBytes(10);
  let out = '';
  for (const byte of bytes) out += BASE32[byte & 31] ?? 'a';
  return out;
}

function toAlias(row: Selectable<AliasesTable>): Alias {
  return {
    id: row.id,
    address: row.address,
    domainId: row.domain_id,
    enabled: row.enabled,
    destinations: row.destinations,
    forwardedCount: Number(row.forwarded_count),
    rejectedCount: Number(row.rejected_count),
    lastSeenAt: row.last_seen_at,
    createdAt: row.created_at,
  };
}

function encodeCursor(alias: Alias): string {
  return Buffer.from(`${alias.createdAt}:${alias.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  const at = Number(createdAt);
  if (
    !Number.isSafeInteger(at) ||
    id === undefined ||
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)
  ) {
    throw new ServerError('VALIDATION_FAILED', 'cursor is not one this API issued', {
      status: 400,
      field: 'cursor',
    });
  }
  return { createdAt: at, id };
}

/** Aliases in PostgreSQL: uniqueness of addresses is the database's, not this code's. */
export class AliasRepository {
  readonly #db: Kysely<Database>;
  readonly #now: () => number;
  readonly #randomLocalPart: () => string;
  readonly #destinations: DestinationPolicy | undefined;

  constructor(db: Kysely<Database>, options: AliasRepositoryOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#randomLocalPart = options.randomLocalPart ?? defaultRandomLocalPart;
    this.#destinations = options.destinations;
  }

  /** Creates an alias on a verified domain the user may use; `ALIAS_TAKEN` if the address exists. */
  async create(input: NewAlias): Promise<Alias> {
    const localPart = (input.localPart ?? this.#randomLocalPart()).toLowerCase();
    if (!LOCAL_PART.test(localPart) || localPart.includes('..') || SRS_LOCAL_PART.test(localPart)) {
      throw new ServerError(
        'VALIDATION_FAILED',
        'localPart may hold a-z, 0-9, dot, dash and underscore (no "..", no SRS prefix)',
        { status: 400, field: 'localPart' },
      );
    }
    const domain = await this.#db
      .selectFrom('domains')
      .select(['id', 'name', 'user_id', 'verified_at'])
      .where('id', '=', input.domainId)
      .executeTakeFirst();
    if (domain === undefined || (domain.user_id !== null && domain.user_id !== input.userId)) {
      throw new ServerError('NOT_FOUND', 'no such domain', { status: 404, field: 'domainId' });
    }
    // On the shared domain the role addresses are the operator's; a custom domain's owner may have them.
    if (domain.user_id === null && RESERVED_SHARED_LOCAL_PARTS.has(localPart)) {
      throw new ServerError('ALIAS_TAKEN', 'that alias address is reserved', {
        status: 409,
        field: 'localPart',
      });
    }
    if (domain.verified_at === null) {
      throw new ServerError(
        'DOMAIN_NOT_VERIFIED',
        'the domain has not passed DNS verification yet',
        { status: 409, field: 'domainId' },
      );
    }
    try {
      // The check and the insert share a transaction that holds the destinations FOR SHARE: a
      // destination cannot be deleted between them (see `DestinationRepository.delete`).
      const row = await this.#db.transaction().execute(async (trx) => {
        await this.#destinations?.assertUsable(input.userId, input.destinations, trx);
        return trx
          .insertInto('aliases')
          .values({
            id: randomUUID(),
            user_id: input.userId,
            domain_id: domain.id,
            local_part: localPart,
            address: `${localPart}@${domain.name}`,
            enabled: true,
            destinations: input.destinations.map((destination) => destination.toLowerCase()),
            last_seen_at: null,
            created_at: this.#now(),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
      });
      return toAlias(row);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ServerError('ALIAS_TAKEN', 'that alias address is taken', {
          status: 409,
          field: 'localPart',
          cause: error,
        });
      throw error;
    }
  }

  /** The user's aliases, oldest first, `limit` at a time; pass the returned cursor for the next page. */
  async list(
    userId: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<AliasPage> {
    const limit = Math.min(Math.max(options.limit ?? 50, 1), 200);
    let query = this.#db.selectFrom('aliases').selectAll().where('user_id', '=', userId);
    if (options.cursor !== undefined) {
      const after = decodeCursor(options.cursor);
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '>', after.createdAt),
          eb.and([eb('created_at', '=', after.createdAt), eb('id', '>', after.id)]),
        ]),
      );
    }
    const rows = await query
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit + 1)
      .execute();
    const items = rows.slice(0, limit).map(toAlias);
    const last = items.at(-1);
    return {
      items,
      nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last) : null,
    };
  }

  /** One alias of the user; `NOT_FOUND` otherwise (another user's alias is not found either). */
  async get(userId: string, aliasId: string): Promise<Alias> {
    const row = await this.#db
      .selectFrom('aliases')
      .selectAll()
      .where('id', '=', aliasId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (row === undefined) throw new ServerError('NOT_FOUND', 'no such alias', { status: 404 });
    return toAlias(row);
  }

  /** Enables or disables an alias and/or replaces its destinations. */
  async update(
    userId: string,
    aliasId: string,
    patch: { enabled?: boolean; destinations?: string[] },
  ): Promise<Alias> {
    const values: { enabled?: boolean; destinations?: string[] } = {};
    if (patch.enabled !== undefined) values.enabled = patch.enabled;
    if (patch.destinations !== undefined)
      values.destinations = patch.destinations.map((destination) => destination.toLowerCase());
    if (Object.keys(values).length === 0) return this.get(userId, aliasId);
    const policy = values.destinations !== undefined ? this.#destinations : undefined;
    if (policy !== undefined)
      // Another user's alias is not found before its new destinations are judged.
      await this.get(userId, aliasId);
    const row = await this.#db.transaction().execute(async (trx) => {
      // Checked and written in one transaction holding the destinations, as in `create`.
      if (policy !== undefined && values.destinations !== undefined)
        await policy.assertUsable(userId, values.destinations, trx);
      return trx
        .updateTable('aliases')
        .set(values)
        .where('id', '=', aliasId)
        .where('user_id', '=', userId)
        .returningAll()
        .executeTakeFirst();
    });
    if (row === undefined) throw new ServerError('NOT_FOUND', 'no such alias', { status: 404 });
    return toAlias(row);
  }

  /** Deletes an alias; its forwarding log goes with it (ON DELETE CASCADE). Returns the address. */
  async delete(userId: string, aliasId: string): Promise<string> {
    const row = await this.#db
      .deleteFrom('aliases')
      .where('id', '=', aliasId)
      .where('user_id', '=', userId)
      .returning('address')
      .executeTakeFirst();
    if (row === undefined) throw new ServerError('NOT_FOUND', 'no such alias', { status: 404 });
    return row.address;
  }

  /**
   * The route for an address (already lower-cased by the caller), or null if no alias has it. Its
   * destinations leave out every address with a destination row that is neither verified nor
   * grandfathered (migration 0004): mail never goes to a mailbox that did not confirm it. Addresses
   * with no row (the account's own, or ones written by tools without a `DestinationPolicy`) stay.
   */
  async findRoute(address: string): Promise<AliasRoute | null> {
    const row = await this.#db
      .selectFrom('aliases')
      .innerJoin('domains', 'domains.id', 'aliases.domain_id')
      .select([
        'aliases.id',
        'aliases.user_id',
        'aliases.address',
        'aliases.enabled',
        sql<string[]>`ARRAY(
          SELECT listed.address
          FROM unnest(aliases.destinations) WITH ORDINALITY AS listed(address, position)
          WHERE NOT EXISTS (
            SELECT 1 FROM destinations
            WHERE destinations.user_id = aliases.user_id
              AND destinations.address = listed.address
              AND destinations.verified_at IS NULL
              AND destinations.grandfathered_at IS NULL
          )
          ORDER BY listed.position
        )`.as('destinations'),
        'domains.name',
      ])
      .where('aliases.address', '=', address.toLowerCase())
      .executeTakeFirst();
    if (row === undefined) return null;
    return {
      id: row.id,
      userId: row.user_id,
      address: row.address,
      enabled: row.enabled,
      destinations: row.destinations,
      domain: row.name,
    };
  }

  /** Counts one message for an alias and appends it to the forwarding log, in one transaction. */
  async recordOutcome(
    aliasId: string,
    outcome: ForwardOutcome,
    details: { reason?: string; messageId?: string } = {},
  ): Promise<void> {
    const now = this.#now();
    // One connection for both statements: under PGlite a second connection would wait on this transaction.
    await this.#db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('aliases')
        .set((eb) =>
          outcome === 'forwarded'
            ? { forwarded_count: eb('forwarded_count', '+', 1), last_seen_at: now }
            : outcome === 'rejected'
              ? { rejected_count: eb('rejected_count', '+', 1), last_seen_at: now }
              : { last_seen_at: now },
        )
        .where('id', '=', aliasId)
        .returning('user_id')
        .executeTakeFirst();
      if (updated === undefined) return;
      await trx
        .insertInto('forwarding_log')
        .values({
          alias_id: aliasId,
          user_id: updated.user_id,
          outcome,
          reason: details.reason ?? null,
          message_id: details.messageId ?? null,
          created_at: now,
        })
        .execute();
    });
  }
}
