import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

const INT8 = 20;

/** Options of `createDatabase`. */
export interface DatabaseOptions {
  /** postgres:// URL of the database. */
  url: string;
  /** Schema put first on the search path (one per test file). Default: the server's default. */
  schema?: string;
  /** Connections in the pool. Default: 10. */
  maxConnections?: number;
  /** Time a query may wait for a connection, in ms. Default: 10_000. */
  connectionTimeoutMs?: number;
  /** Time a statement may run before PostgreSQL cancels it, in ms. Default: 15_000. */
  statementTimeoutMs?: number;
}

/** A Kysely instance and the pool under it, closed together by `destroy()`. */
export interface DatabaseHandle {
  db: Kysely<Database>;
  pool: pg.Pool;
  destroy(): Promise<void>;
}

/** Opens a pool to PostgreSQL (or PGlite served over the wire protocol) and a typed query layer on it. */
export function createDatabase(options: DatabaseOptions): DatabaseHandle {
  // Epoch-ms columns are bigint: parse them as numbers for this pool only, not process-wide.
  const types: pg.CustomTypesConfig = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
      oid === INT8
        ? (value: string) => Number(value)
        : (pg.types.getTypeParser(
            oid,
            format,
          ) as unknown)) as pg.CustomTypesConfig['getTypeParser'],
  };
  const poolConfig: pg.PoolConfig = {
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    statement_timeout: options.statementTimeoutMs ?? 15_000,
    types,
  };
  if (options.schema !== undefined) poolConfig.options = `-c search_path=${options.schema}`;
  const pool = new pg.Pool(poolConfig);
  // An idle client that loses its connection emits 'error' on the pool; without a listener that crashes the process.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, pool, destroy: () => db.destroy() };
}

/** True when `error` is PostgreSQL's unique_violation. */
export function isUniqueViolation(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505'
  );
}
