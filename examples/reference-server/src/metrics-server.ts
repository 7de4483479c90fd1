import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { Secret } from '@postern/config';
import type { Metrics } from './metrics.js';

/** The `WWW-Authenticate` challenge of a refused scrape. */
export const METRICS_CHALLENGE = 'Bearer realm="metrics"';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Whether an `Authorization` header carries the metrics bearer token; any request passes when no
 * token is configured. Both sides are hashed before the comparison, so its time says nothing about
 * the length or the content of the token.
 */
export function metricsAuthorized(
  authorization: string | undefined,
  token: Secret | undefined,
): boolean {
  if (token === undefined) return true;
  const presented = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
  const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
  const same = timingSafeEqual(digest(presented ?? ''), digest(token.reveal()));
  return presented !== undefined && same;
}

/** Options of `serveMetrics`. */
export interface MetricsServerOptions {
  /** Interface to listen on. */
  host: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Bearer token a scrape must present (`METRICS_TOKEN`). Default: none asked. */
  token?: Secret | undefined;
}

/**
 * A tiny HTTP server answering `GET /metrics` for processes without an API (smtp, worker), and for
 * the API when its metrics are kept off the public listener (`API_METRICS_PORT`).
 */
export async function serveMetrics(
  metrics: Metrics,
  options: MetricsServerOptions,
): Promise<{ port: number; close(): Promise<void> }> {
  const { host, port, token } = options;
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    if (!metricsAuthorized(request.headers.authorization, token)) {
      response.writeHead(401, { 'www-authenticate': METRICS_CHALLENGE }).end();
      return;
    }
    metrics.registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => response.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
