import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDatabase } from '../../src/db/connect.js';
import type { DatabaseHandle } from '../../src/db/connect.js';
import { migrateToLatest } from '../../src/db/migrations.js';

export const DATABASE_URL =
  process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A migrated schema of its own for one test file, and a function that drops it. */
export interface TestDatabase extends DatabaseHandle {
  schema: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const handle = createDatabase({ url: DATABASE_URL, schema });
  await migrateToLatest(handle.db);
  return {
    ...handle,
    schema,
    async drop() {
      await handle.destroy();
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.end();
    },
  };
}
