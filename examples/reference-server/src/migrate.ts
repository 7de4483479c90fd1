// `pnpm --filter @postern/reference-server migrate`: runs every pending migration against DATABASE_URL.
import { createDatabase } from './db/connect.js';
import { migrateToLatest } from './db/migrations.js';

const url = process.env['DATABASE_URL'];
if (url === undefined || url === '') {
  console.error('DATABASE_URL is not set (the launcher migrates the embedded database itself)');
  process.exit(2);
}
const handle = createDatabase({ url, maxConnections: 1 });
try {
  const result = await migrateToLatest(handle.db);
  for (const entry of result.results ?? [])
    console.log(`${entry.status.toLowerCase()}: ${entry.migrationName}`);
  if ((result.results ?? []).length === 0) console.log('up to date');
} finally {
  await handle.destroy();
}
