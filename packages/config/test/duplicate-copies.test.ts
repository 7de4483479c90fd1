// Two copies of the package in one process (an ESM and a CJS build, or two versions in
// node_modules) must still recognise each other's errors and secrets, and never skip a check.
import { describe, expect, it, vi } from 'vitest';

const first = await import('../src/index.js');
// A reset registry makes the next import load a second, independent instance of every module.
vi.resetModules();
const second = await import('../src/index.js');
type ConfigError = InstanceType<typeof first.ConfigError>;

describe('two copies of @postern/config', () => {
  it('are really separate module instances', () => {
    expect(second.Secret).not.toBe(first.Secret);
    expect(new second.Secret('x')).not.toBeInstanceOf(first.Secret);
  });

  it("recognise each other's ConfigError and Secret", () => {
    let thrown: unknown;
    try {
      second.loadConfig({ port: second.port() }, { env: {} });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).not.toBeInstanceOf(first.ConfigError);
    expect(first.ConfigError.isInstance(thrown)).toBe(true);
    expect(first.Secret.isInstance(new second.Secret('x'))).toBe(true);
  });

  it('still refuse a weak or defaulted secret made by the other copy', () => {
    const shape = {
      key: second.secret({ default: 'dev-default-value-0001' }),
      pin: second.secret({ minLength: 4, minEntropyBits: 8 }),
    };
    let thrown: unknown;
    try {
      first.loadConfig(shape, { mode: 'production', env: { PIN: '7391' } });
    } catch (error) {
      thrown = error;
    }
    expect(first.ConfigError.isInstance(thrown)).toBe(true);
    expect((thrown as ConfigError).issues.map((issue) => [issue.env, issue.code])).toEqual([
      ['KEY', 'SECRET_DEFAULT'],
    ]);
  });

  it("redact and reveal the other copy's secrets", () => {
    const config = first.loadConfig(
      { token: second.secret() },
      { mode: 'production', env: { TOKEN: 'vQ8#nL2$wZ5!rT9@kM4&xB7' } },
    );
    expect(config.token.reveal()).toBe('vQ8#nL2$wZ5!rT9@kM4&xB7');
    expect(JSON.stringify(config)).toBe('{"token":"[redacted]"}');
  });
});

describe('devDefault and devOptional across copies', () => {
  it('a devOptional from the other copy is still required in production', () => {
    let thrown: unknown;
    try {
      first.loadConfig(
        { relay: second.devOptional(second.url()) },
        { env: {}, mode: 'production' },
      );
    } catch (error) {
      thrown = error;
    }
    expect(first.ConfigError.isInstance(thrown)).toBe(true);
    expect((thrown as ConfigError).issues.map((issue) => [issue.env, issue.code])).toEqual([
      ['RELAY', 'MISSING'],
    ]);
  });

  it('a devDefault from the other copy applies in development and not in production', () => {
    const shape = { port: second.devDefault(second.port(), '2525') };
    expect(first.loadConfig(shape, { env: {}, mode: 'development' }).port).toBe(2525);
    expect(() => first.loadConfig(shape, { env: {}, mode: 'production' })).toThrow(
      /development default does not apply in production/,
    );
  });
});
