import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The Prometheus metrics of one process, on a registry of its own (never the global one). */
export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  loginOutcomes: Counter<'outcome'>;
  smtpMessages: Counter<'outcome' | 'reason'>;
  queueDepth: Gauge<'queue' | 'state'>;
  breakerState: Gauge<'breaker'>;
}

/** Creates the metrics of a process; `process` becomes a label on every series. */
export function createMetrics(
  processName: string,
  options: { defaultMetrics?: boolean } = {},
): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ process: processName });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'postern_http_request_duration_seconds',
      help: 'HTTP request latency by route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    loginOutcomes: new Counter({
      name: 'postern_login_total',
      help: 'Login attempts by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    smtpMessages: new Counter({
      name: 'postern_smtp_messages_total',
      help: 'SMTP messages by outcome (accepted, rejected, forwarded, deferred, bounced, lost) and reason',
      labelNames: ['outcome', 'reason'],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'postern_queue_jobs',
      help: 'Jobs in a queue by state',
      labelNames: ['queue', 'state'],
      registers: [registry],
    }),
    breakerState: new Gauge({
      name: 'postern_circuit_breaker_open',
      help: 'Circuit breaker state: 0 closed, 0.5 half-open, 1 open',
      labelNames: ['breaker'],
      registers: [registry],
    }),
  };
}
