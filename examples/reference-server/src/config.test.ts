import { ConfigError } from '@postern/config';
import { describe, expect, it, vi } from 'vitest';
import { deliveryRetry, loadServerConfig, loadServerConfigOrExit, serverMode } from './config.js';

const strong = 'Vq8#pL2!zR6@wN4$kT9&bX3*mJ7^dF5%';
const production = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://db.internal/postern',
  REDIS_URL: 'redis://cache.internal:6379',
  SMTP_RELAYS: 'smtp://relay.internal:587',
  JWT_SECRET: strong,
  SRS_SECRET: `${strong}x`,
};

describe('loadServerConfig', () => {
  it('starts in development with every fallback and says so in warnings', () => {
    const config = loadServerConfig({});
    expect(serverMode({})).toBe('development');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.api.port).toBe(3000);
    expect(config.warnings.map((warning) => warning.env)).toEqual(
      expect.arrayContaining(['JWT_SECRET', 'SRS_SECRET']),
    );
    expect(JSON.stringify(config)).not.toContain('postern-development-jwt-signing-key');
  });

  it('accepts a complete production configuration', () => {
    const config = loadServerConfig(production);
    expect(config.smtp.relays).toEqual(['smtp://relay.internal:587']);
    expect(config.jwtSecret.reveal()).toBe(strong);
  });

  it('retries queued mail for five days by default, from 1 minute doubling to 1 hour, and reads durations', () => {
    expect(deliveryRetry(loadServerConfig({}))).toEqual({
      lifetimeMs: 5 * 24 * 3_600_000,
      bounceLifetimeMs: 5 * 24 * 3_600_000,
      initialDelayMs: 60_000,
      maxDelayMs: 3_600_000,
    });
    expect(
      deliveryRetry(
        loadServerConfig({
          SMTP_QUEUE_LIFETIME_MS: '2d',
          SMTP_BOUNCE_LIFETIME_MS: '1d',
          SMTP_RETRY_DELAY_MS: '30s',
          SMTP_RETRY_MAX_DELAY_MS: '15m',
        }),
      ),
    ).toEqual({
      lifetimeMs: 2 * 24 * 3_600_000,
      bounceLifetimeMs: 24 * 3_600_000,
      initialDelayMs: 30_000,
      maxDelayMs: 900_000,
    });
    expect(() => loadServerConfig({ SMTP_QUEUE_LIFETIME_MS: '10ms' })).toThrow(
      /SMTP_QUEUE_LIFETIME_MS/,
    );
  });

  it('supervises with a backoff from 500 ms to 30 s and gives up past 5 crashes in 5 minutes by default; reads and checks the settings', () => {
    expect(loadServerConfig({}).supervisor).toEqual({
      restartDelayMs: 500,
      maxRestartDelayMs: 30_000,
      stableAfterMs: 60_000,
      maxCrashes: 5,
      crashWindowMs: 300_000,
    });
    expect(
      loadServerConfig({
        SUPERVISOR_RESTART_DELAY_MS: '1s',
        SUPERVISOR_MAX_RESTART_DELAY_MS: '10s',
        SUPERVISOR_STABLE_AFTER_MS: '2m',
        SUPERVISOR_MAX_CRASHES: '2',
        SUPERVISOR_CRASH_WINDOW_MS: '1m',
      }).supervisor,
    ).toEqual({
      restartDelayMs: 1_000,
      maxRestartDelayMs: 10_000,
      stableAfterMs: 120_000,
      maxCrashes: 2,
      crashWindowMs: 60_000,
    });
    expect(() => loadServerConfig({ SUPERVISOR_MAX_CRASHES: '0' })).toThrow(
      /SUPERVISOR_MAX_CRASHES/,
    );
    expect(() => loadServerConfig({ SUPERVISOR_CRASH_WINDOW_MS: '10ms' })).toThrow(
      /SUPERVISOR_CRASH_WINDOW_MS/,
    );
    let error: unknown;
    try {
      loadServerConfig({
        SUPERVISOR_RESTART_DELAY_MS: '1m',
        SUPERVISOR_MAX_RESTART_DELAY_MS: '1s',
      });
    } catch (caught) {
      error = caught;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).issues.map((issue) => [issue.env, issue.code])).toEqual([
      ['SUPERVISOR_MAX_RESTART_DELAY_MS', 'INVALID'],
    ]);
  });

  it('warns about a taken address at most once an hour per address by default', () => {
    expect(loadServerConfig({}).limits.registerWarningIntervalMs).toBe(3_600_000);
    expect(
      loadServerConfig({ LIMITS_REGISTER_WARNING_INTERVAL_MS: '1d' }).limits
        .registerWarningIntervalMs,
    ).toBe(86_400_000);
    expect(() => loadServerConfig({ LIMITS_REGISTER_WARNING_INTERVAL_MS: '10ms' })).toThrow(
      /LIMITS_REGISTER_WARNING_INTERVAL_MS/,
    );
  });

  it('serves /docs by default in development only, and keeps /metrics open unless METRICS_TOKEN is set', () => {
    expect(loadServerConfig({}).api.openapi).toBe(true);
    expect(loadServerConfig({}).metricsToken).toBeUndefined();
    expect(loadServerConfig({}).api.metricsPort).toBeUndefined();
    expect(loadServerConfig(production).api.openapi).toBe(false);
    expect(loadServerConfig({ ...production, API_OPENAPI: 'true' }).api.openapi).toBe(true);
    expect(loadServerConfig({ API_OPENAPI: 'false' }).api.openapi).toBe(false);
  });

  it('refuses an API process in production with /metrics on its public listener and no METRICS_TOKEN', () => {
    let error: unknown;
    try {
      loadServerConfig(production, 'api');
    } catch (caught) {
      error = caught;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).issues.map((issue) => [issue.env, issue.code])).toEqual([
      ['METRICS_TOKEN', 'MISSING'],
    ]);
    expect((error as Error).message).toMatch(/METRICS_TOKEN.*API_METRICS_PORT/);
    // The SMTP process and the worker serve no API: the rule is the API's alone.
    expect(loadServerConfig(production, 'smtp').metricsToken).toBeUndefined();
    expect(loadServerConfig(production, 'worker').metricsToken).toBeUndefined();
    // Either way out is accepted: metrics on a listener of their own, or a strong token.
    expect(
      loadServerConfig({ ...production, API_METRICS_PORT: '9100' }, 'api').api.metricsPort,
    ).toBe(9100);
    const token = `${strong}m`;
    expect(
      loadServerConfig({ ...production, METRICS_TOKEN: token }, 'api').metricsToken?.reveal(),
    ).toBe(token);
    expect(() => loadServerConfig({ ...production, METRICS_TOKEN: 'changeme' }, 'api')).toThrow(
      /METRICS_TOKEN/,
    );
    // A development API keeps its open /metrics (and says nothing about it).
    expect(loadServerConfig({}, 'api').metricsToken).toBeUndefined();
  });

  it('refuses in production: no database, no Redis, no relay, default or weak secrets, all listed at once', () => {
    let error: unknown;
    try {
      loadServerConfig({ NODE_ENV: 'production', JWT_SECRET: 'changeme' });
    } catch (caught) {
      error = caught;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    const variables = (error as ConfigError).issues.map((issue) => issue.env);
    expect(variables).toEqual(
      expect.arrayContaining([
        'DATABASE_URL',
        'REDIS_URL',
        'SMTP_RELAYS',
        'JWT_SECRET',
        'SRS_SECRET',
      ]),
    );
    expect(String((error as Error).message)).not.toContain('changeme');
  });

  it('treats an unknown NODE_ENV as production, so a typo cannot enable the fallbacks', () => {
    expect(() => loadServerConfig({ NODE_ENV: 'prod' })).toThrow();
  });
});

describe('loadServerConfigOrExit', () => {
  it('prints the problems without a stack and exits with 78; returns the config when valid', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`exit ${String(code)}`);
    }) as typeof process.exit);
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(() => loadServerConfigOrExit({ NODE_ENV: 'production' })).toThrow('exit 78');
      expect(String(error.mock.calls[0]?.[0])).toMatch(/^Invalid configuration \(5 problems\)/);
      expect(loadServerConfigOrExit(production).smtp.relays).toHaveLength(1);
    } finally {
      exit.mockRestore();
      error.mockRestore();
    }
  });
});
