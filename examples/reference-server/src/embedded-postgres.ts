import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** A PGlite database served over the PostgreSQL wire protocol on a loopback port. */
export interface EmbeddedPostgres {
  /** postgres:// URL every process connects to with `pg`. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Opens (or creates) the PGlite database in `directory` and serves it on 127.0.0.1 at `port`
 * (0: any free port). PGlite runs one transaction at a time; the socket server multiplexes
 * connections, so code must never wait on a second connection inside a transaction.
 */
export async function startEmbeddedPostgres(
  directory: string,
  port = 0,
): Promise<EmbeddedPostgres> {
  const db = await PGlite.create(directory);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 100 });
  await server.start();
  const address = server.getServerConn();
  return {
    url: `postgres://postgres@${address}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
