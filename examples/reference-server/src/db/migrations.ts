import { Migrator, sql } from 'kysely';
import type { Kysely, Migration, MigrationProvider, MigrationResultSet } from 'kysely';
import type { Database } from './schema.js';

/**
 * The migrations, in code rather than a folder of files, so the same list runs from tsx, from a
 * bundle and from tests. Names sort in the order they run; never edit one that has shipped.
 */
export const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Uniqueness and cascades live in the database: two processes racing on one alias cannot
      // both win, and deleting a user removes everything it owns in the same statement.
      // Sessions, lockout counters and single-use tokens live in Redis (RedisAuthStore): they
      // expire natively there and are hit on every refresh and login.
      await sql`
        CREATE TABLE users (
          id uuid PRIMARY KEY,
          email text NOT NULL UNIQUE,
          password_hash text NOT NULL,
          email_verified boolean NOT NULL DEFAULT false,
          created_at bigint NOT NULL
        );
        CREATE TABLE domains (
          id uuid PRIMARY KEY,
          user_id uuid REFERENCES users(id) ON DELETE CASCADE,
          name text NOT NULL UNIQUE CHECK (name = lower(name)),
          verification_token text NOT NULL,
          dkim_selector text NOT NULL,
          dkim_private_key text NOT NULL,
          dkim_public_key text NOT NULL,
          verified_at bigint,
          created_at bigint NOT NULL
        );
        CREATE TABLE aliases (
          id uuid PRIMARY KEY,
          user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
          domain_id uuid NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
          local_part text NOT NULL CHECK (local_part = lower(local_part)),
          address text NOT NULL UNIQUE,
          enabled boolean NOT NULL DEFAULT true,
          destinations text[] NOT NULL CHECK (cardinality(destinations) > 0),
          forwarded_count bigint NOT NULL DEFAULT 0,
          rejected_count bigint NOT NULL DEFAULT 0,
          last_seen_at bigint,
          created_at bigint NOT NULL,
          UNIQUE (domain_id, local_part)
        );
        CREATE INDEX aliases_user_id_created ON aliases(user_id, created_at, id);
        CREATE TABLE forwarding_log (
          id bigserial PRIMARY KEY,
          alias_id uuid NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,
          user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
          outcome text NOT NULL,
          reason text,
          message_id text,
          created_at bigint NOT NULL
        );
        CREATE INDEX forwarding_log_alias_id ON forwarding_log(alias_id);
        CREATE INDEX forwarding_log_user_id ON forwarding_log(user_id);
        CREATE TABLE audit_log (
          id bigserial PRIMARY KEY,
          user_id uuid REFERENCES users(id) ON DELETE CASCADE,
          action text NOT NULL,
          request_id text,
          detail jsonb NOT NULL DEFAULT '{}'::jsonb,
          created_at bigint NOT NULL
        );
        CREATE INDEX audit_log_user_id ON audit_log(user_id);
      `.execute(db);
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await sql`
        DROP TABLE audit_log; DROP TABLE forwarding_log; DROP TABLE aliases; DROP TABLE domains;
        DROP TABLE users;
      `.execute(db);
    },
  },
  '0002_domain_claims': {
    async up(db: Kysely<unknown>): Promise<void> {
      // A name is unique among verified domains (and the shared ones) only: an unverified claim
      // must not lock the real owner out of their own domain. Each user claims a name once.
      await sql`
        ALTER TABLE domains DROP CONSTRAINT domains_name_key;
        CREATE UNIQUE INDEX domains_name_owned ON domains(name)
          WHERE verified_at IS NOT NULL OR user_id IS NULL;
        CREATE UNIQUE INDEX domains_user_name ON domains(user_id, name);
        CREATE INDEX domains_name ON domains(name);
      `.execute(db);
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await sql`
        DELETE FROM domains WHERE verified_at IS NULL AND user_id IS NOT NULL;
        DROP INDEX domains_name; DROP INDEX domains_user_name; DROP INDEX domains_name_owned;
        ALTER TABLE domains ADD CONSTRAINT domains_name_key UNIQUE (name);
      `.execute(db);
    },
  },
  '0003_destinations': {
    async up(db: Kysely<unknown>): Promise<void> {
      // A user may forward only to mailboxes that confirmed it (or to the account's own address,
      // verified at sign-up). Only a SHA-256 of the mailed token is kept: a database leak gives
      // no usable token. Existing aliases keep their destinations; the check runs on changes.
      await sql`
        CREATE TABLE destinations (
          id uuid PRIMARY KEY,
          user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
          address text NOT NULL CHECK (address = lower(address)),
          verified_at bigint,
          token_hash text,
          token_expires_at bigint,
          created_at bigint NOT NULL,
          UNIQUE (user_id, address)
        );
      `.execute(db);
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await sql`DROP TABLE destinations;`.execute(db);
    },
  },
  '0004_grandfathered_destinations': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Aliases from before 0003 forward to addresses that never confirmed. Cutting them off at
      // upgrade would drop users' mail without warning; trusting them for good would keep the hole
      // 0003 closed. Each becomes a destination row, unverified but grandfathered: still forwarded
      // to, listed as such, refused for new aliases, verified by adding it again. Clearing
      // grandfathered_at ends the grace period: the SMTP side forwards to no unverified row.
      await sql`
        ALTER TABLE destinations ADD COLUMN grandfathered_at bigint;
        INSERT INTO destinations (id, user_id, address, verified_at, grandfathered_at, token_hash,
                                  token_expires_at, created_at)
        SELECT gen_random_uuid(), pairs.user_id, pairs.address, NULL, pairs.now, NULL, NULL, pairs.now
        FROM (
          SELECT DISTINCT aliases.user_id, lower(destination) AS address,
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now
          FROM aliases CROSS JOIN LATERAL unnest(aliases.destinations) AS destination
        ) AS pairs
        JOIN users ON users.id = pairs.user_id
        WHERE pairs.address <> lower(users.email)
        ON CONFLICT (user_id, address) DO UPDATE SET grandfathered_at = EXCLUDED.grandfathered_at
          WHERE destinations.verified_at IS NULL;
      `.execute(db);
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await sql`
        DELETE FROM destinations WHERE grandfathered_at IS NOT NULL AND verified_at IS NULL
          AND token_hash IS NULL;
        ALTER TABLE destinations DROP COLUMN grandfathered_at;
      `.execute(db);
    },
  },
};

const provider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};

/**
 * Runs every pending migration on one pinned connection, in the connection's current schema;
 * throws with the failing migration's name if one fails.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationResultSet> {
  const result = await db.connection().execute(async (connection) => {
    // Name the schema: Kysely otherwise looks for its bookkeeping tables in every schema and
    // would find another deployment's (or test file's) in the same database.
    const { rows } = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(
      connection,
    );
    const schema = rows[0]?.schema ?? 'public';
    return new Migrator({
      db: connection,
      provider,
      migrationTableSchema: schema,
    }).migrateToLatest();
  });
  if (result.error !== undefined) {
    const failed = result.results?.find((entry) => entry.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed`, {
      cause: result.error,
    });
  }
  return result;
}
