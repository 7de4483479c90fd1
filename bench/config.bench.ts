/**
 * loadConfig of a 30-variable shape against @t3-oss/env-core (createEnv with zod 4) and envalid
 * (cleanEnv), in one run, on the same environment object. Each contender validates the same
 * variables with its own closest equivalents (ports, integers, booleans, URLs, enums, an email,
 * three secrets) and builds its result object; ours additionally runs the production secret checks
 * (known defaults, length, entropy) and deep-freezes the result.
 */
import { createEnv } from '@t3-oss/env-core';
import {
  bool as envBool,
  cleanEnv,
  email as envEmail,
  num,
  port as envPort,
  str,
  url as envUrl,
} from 'envalid';
import * as z from 'zod';
import { bool, email, integer, list, loadConfig, number, port, secret, url } from '@postern/config';
import { ratio, report, suite } from './harness.ts';

const env: Record<string, string> = {
  NODE_ENV: 'production',
  PORT: '8080',
  HOST: '0.0.0.0',
  PUBLIC_URL: 'https://mail.example.com',
  LOG_LEVEL: 'info',
  DEBUG: 'false',
  DATABASE_URL: 'https://db.internal.example.com/app',
  DATABASE_POOL_MAX: '20',
  REDIS_URL: 'https://redis.internal.example.com',
  SMTP_HOST: 'smtp.example.com',
  SMTP_PORT: '587',
  SMTP_SECURE: 'true',
  SMTP_USER: 'relay-user',
  SMTP_PASSWORD: 'Hq3!Zp8$Lm1#Vr6@Tn4&Ws9',
  SMTP_TIMEOUT_MS: '30000',
  JWT_SECRET: 'vQ8#nL2$wZ5!rT9@kM4&xB7',
  JWT_TTL_SECONDS: '900',
  SESSION_SECRET: 'k9$Tq2!vLr8#Wm4@Zx7&pC3',
  COOKIE_SECURE: 'true',
  CORS_ORIGINS: 'https://app.example.com,https://admin.example.com',
  RATE_LIMIT_PER_MINUTE: '600',
  RATE_LIMIT_BURST: '50',
  SENTRY_DSN: 'https://key@sentry.example.com/1',
  ADMIN_EMAIL: 'postmaster@example.com',
  MAX_MESSAGE_BYTES: '26214400',
  SAMPLE_RATE: '0.25',
  FEATURE_SIGNUP: 'yes',
  FEATURE_DKIM: '1',
  DKIM_SELECTOR: 'postern2026',
  REGION: 'eu',
};

const ours = {
  NODE_ENV: z.enum(['development', 'test', 'production']),
  PORT: port(),
  HOST: z.string(),
  PUBLIC_URL: url(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']),
  DEBUG: bool(),
  DATABASE_URL: url(),
  DATABASE_POOL_MAX: integer({ min: 1 }),
  REDIS_URL: url(),
  SMTP_HOST: z.string(),
  SMTP_PORT: port(),
  SMTP_SECURE: bool(),
  SMTP_USER: z.string(),
  SMTP_PASSWORD: secret(),
  SMTP_TIMEOUT_MS: integer({ min: 0 }),
  JWT_SECRET: secret(),
  JWT_TTL_SECONDS: integer({ min: 1 }),
  SESSION_SECRET: secret(),
  COOKIE_SECURE: bool(),
  CORS_ORIGINS: list(url()),
  RATE_LIMIT_PER_MINUTE: integer({ min: 1 }),
  RATE_LIMIT_BURST: integer({ min: 0 }),
  SENTRY_DSN: url().optional(),
  ADMIN_EMAIL: email(),
  MAX_MESSAGE_BYTES: integer({ min: 1 }),
  SAMPLE_RATE: number({ min: 0, max: 1 }),
  FEATURE_SIGNUP: bool(),
  FEATURE_DKIM: bool(),
  DKIM_SELECTOR: z.string(),
  REGION: z.enum(['eu', 'us']),
};

// t3-env's own recommendations: z.stringbool() for booleans, z.coerce.number() for numbers.
const t3Server = {
  NODE_ENV: z.enum(['development', 'test', 'production']),
  PORT: z.coerce.number().int().min(1).max(65_535),
  HOST: z.string(),
  PUBLIC_URL: z.url(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']),
  DEBUG: z.stringbool(),
  DATABASE_URL: z.url(),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1),
  REDIS_URL: z.url(),
  SMTP_HOST: z.string(),
  SMTP_PORT: z.coerce.number().int().min(1).max(65_535),
  SMTP_SECURE: z.stringbool(),
  SMTP_USER: z.string(),
  SMTP_PASSWORD: z.string().min(16),
  SMTP_TIMEOUT_MS: z.coerce.number().int().min(0),
  JWT_SECRET: z.string().min(16),
  JWT_TTL_SECONDS: z.coerce.number().int().min(1),
  SESSION_SECRET: z.string().min(16),
  COOKIE_SECURE: z.stringbool(),
  CORS_ORIGINS: z
    .string()
    .transform((value) => value.split(',').map((item) => item.trim()))
    .pipe(z.array(z.url())),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1),
  RATE_LIMIT_BURST: z.coerce.number().int().min(0),
  SENTRY_DSN: z.url().optional(),
  ADMIN_EMAIL: z.email(),
  MAX_MESSAGE_BYTES: z.coerce.number().int().min(1),
  SAMPLE_RATE: z.coerce.number().min(0).max(1),
  FEATURE_SIGNUP: z.stringbool(),
  FEATURE_DKIM: z.stringbool(),
  DKIM_SELECTOR: z.string(),
  REGION: z.enum(['eu', 'us']),
};

const envalidSpecs = {
  NODE_ENV: str({ choices: ['development', 'test', 'production'] }),
  PORT: envPort(),
  HOST: str(),
  PUBLIC_URL: envUrl(),
  LOG_LEVEL: str({ choices: ['debug', 'info', 'warn', 'error'] }),
  DEBUG: envBool(),
  DATABASE_URL: envUrl(),
  DATABASE_POOL_MAX: num(),
  REDIS_URL: envUrl(),
  SMTP_HOST: str(),
  SMTP_PORT: envPort(),
  SMTP_SECURE: envBool(),
  SMTP_USER: str(),
  SMTP_PASSWORD: str(),
  SMTP_TIMEOUT_MS: num(),
  JWT_SECRET: str(),
  JWT_TTL_SECONDS: num(),
  SESSION_SECRET: str(),
  COOKIE_SECURE: envBool(),
  CORS_ORIGINS: str(),
  RATE_LIMIT_PER_MINUTE: num(),
  RATE_LIMIT_BURST: num(),
  SENTRY_DSN: envUrl({ default: undefined }),
  ADMIN_EMAIL: envEmail(),
  MAX_MESSAGE_BYTES: num(),
  SAMPLE_RATE: num(),
  FEATURE_SIGNUP: envBool(),
  FEATURE_DKIM: envBool(),
  DKIM_SELECTOR: str(),
  REGION: str({ choices: ['eu', 'us'] }),
};

const runOurs = () => loadConfig(ours, { env, mode: 'production' });
// A fresh copy each call: t3-env may delete keys from runtimeEnv (emptyStringAsUndefined), so it never shares ours.
const runT3 = () => createEnv({ server: t3Server, runtimeEnv: { ...env } });
const runEnvalid = () => cleanEnv(env, envalidSpecs);

// Same answers before timing anything: a benchmark of code that disagrees measures nothing.
const checks = [runOurs(), runT3(), runEnvalid()];
for (const result of checks) {
  const port = (result as { SMTP_PORT: unknown }).SMTP_PORT;
  const debug = (result as { DEBUG: unknown }).DEBUG;
  if (port !== 587 || debug !== false || Object.keys(result).length < 30)
    throw new Error('contenders disagree on the parsed values');
}

const results = await suite(
  [
    { name: '@postern/config loadConfig', fn: runOurs, meta: { variables: 30 } },
    {
      name: '@t3-oss/env-core createEnv (zod 4.6.7)',
      fn: runT3,
      meta: { variables: 30, version: '0.13.11' },
    },
    { name: 'envalid cleanEnv', fn: runEnvalid, meta: { variables: 30, version: '8.2.0' } },
  ],
  // 15 short interleaved rounds: the median resists the noise of a shared machine; about 30 s in all.
  { durationMs: 9_000, warmupMs: 1_000, rounds: 15 },
);
const [postern, t3, envalid] = results as [
  (typeof results)[number],
  (typeof results)[number],
  (typeof results)[number],
];
report('Load and validate a 30-variable configuration (ops/s, higher is better)', results, {
  'postern/t3-env': ratio(postern, t3),
  'postern/envalid': ratio(postern, envalid),
});
