/**
 * @postern/logger against plain pino 10.4.0 in one run, every logger writing to a null
 * destination: ops/s of one `info` call. Contenders: createLogger (default redaction: top-level
 * paths in pino plus the line scrubber that redacts at any depth and in any letter case); pino
 * with exactly the redact paths createLogger hands it (so the difference is the scrubber); pino
 * with the wildcard paths a careful user writes for the same keys one level down (`*.key`, plus
 * req/res headers and user); pino without redaction. Build the package first
 * (`cd packages/logger && npx tsup`): `@postern/logger` resolves to its dist.
 */
import { createRequire } from 'node:module';
import { DEFAULT_REDACT_KEYS, createLogger, redactPaths } from '@postern/logger';
import type { DestinationStream, Logger } from '@postern/logger';
import type { BenchCase } from './harness.ts';
import { progress, ratio, report, suite } from './harness.ts';

type PinoFactory = (
  options: { name: string; redact?: { paths: string[]; censor: string } },
  destination: DestinationStream,
) => Logger;

// pino is not a dependency of @postern/bench: load the exact copy @postern/logger uses.
const requireFromLogger = createRequire(import.meta.resolve('@postern/logger'));
const pino = requireFromLogger('pino') as PinoFactory;
const pinoVersion = (requireFromLogger('pino/package.json') as { version: string }).version;

const nullDestination: DestinationStream = { write: () => undefined };
const censor = '[Redacted]';

const segment = (key: string): string =>
  /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`;
const wildcardPaths = DEFAULT_REDACT_KEYS.flatMap((key) => [
  segment(key).startsWith('.') ? key : segment(key),
  `*${segment(key)}`,
  `req.headers${segment(key)}`,
  `res.headers${segment(key)}`,
  `user${segment(key)}`,
]);

const requestLine = {
  req: {
    method: 'POST',
    url: '/v1/aliases?page=2',
    headers: {
      host: 'api.example.com',
      'user-agent': 'curl/8.5.0',
      accept: 'application/json',
      authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl',
      cookie: 'session=9f8e7d6c5b4a',
    },
  },
  res: { statusCode: 201 },
  user: { id: 42, email: 'a***@example.com', plan: 'pro' },
  durationMs: 12.4,
};

const loggers: Record<string, Logger> = {
  ours: createLogger({
    name: 'bench',
    destination: nullDestination,
    env: { NODE_ENV: 'production' },
  }),
  samePaths: pino({ name: 'bench', redact: { paths: redactPaths(), censor } }, nullDestination),
  wildcard: pino({ name: 'bench', redact: { paths: wildcardPaths, censor } }, nullDestination),
  none: pino({ name: 'bench' }, nullDestination),
};

function cases(line: 'request' | 'plain'): BenchCase[] {
  const call =
    line === 'request'
      ? (logger: Logger) => () => {
          logger.info(requestLine, 'request completed');
        }
      : (logger: Logger) => () => {
          logger.info('cache warmed');
        };
  const meta = { line, pino: pinoVersion };
  return [
    {
      name: `createLogger (${line})`,
      fn: call(loggers['ours']!),
      meta: { ...meta, paths: redactPaths().length, scrubber: true },
    },
    {
      name: `pino, same paths (${line})`,
      fn: call(loggers['samePaths']!),
      meta: { ...meta, paths: redactPaths().length },
    },
    {
      name: `pino, *.key paths (${line})`,
      fn: call(loggers['wildcard']!),
      meta: { ...meta, paths: wildcardPaths.length },
    },
    {
      name: `pino, no redaction (${line})`,
      fn: call(loggers['none']!),
      meta: { ...meta, paths: 0 },
    },
  ];
}

progress('logger: request line with secrets');
const request = await suite(cases('request'), { durationMs: 4_000, warmupMs: 500 });
progress('logger: plain message');
const plain = await suite(cases('plain'), { durationMs: 2_000, warmupMs: 300 });
const [ours, samePaths, wildcard, none] = request;
const [oursPlain, , , nonePlain] = plain;

report('@postern/logger vs pino 10 (info call, null destination)', [...request, ...plain], {
  'createLogger/pino-same-paths': ratio(ours!, samePaths!),
  'createLogger/pino-wildcard-paths': ratio(ours!, wildcard!),
  'createLogger/pino-no-redaction': ratio(ours!, none!),
  'createLogger/pino-no-redaction (plain line)': ratio(oursPlain!, nonePlain!),
});
