import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS, createContainer, disposeContainer, get } from '../src/container.js';
import type { Registry } from '../src/container.js';
import { OutboxMailer, QueueMailer, RelayMailer } from '../src/mailer.js';
import { createTestEnvironment } from './support/server.js';
import type { TestEnvironment } from './support/server.js';

let environment: TestEnvironment;
const made: ReturnType<typeof createContainer>[] = [];

function createContainerFor(config: typeof environment.config): ReturnType<typeof createContainer> {
  const container = createContainer(config, 'api');
  made.push(container);
  return container;
}

beforeAll(async () => {
  environment = await createTestEnvironment('container');
});

afterAll(async () => {
  for (const container of made) await disposeContainer(container);
  await environment.close();
});

describe('container', () => {
  it('resolves every token, once per container', () => {
    const container = environment.container('api');
    for (const name of Object.keys(TOKENS) as (keyof Registry)[]) {
      const value = get(container, name);
      expect(value, name).toBeDefined();
      expect(get(container, name), name).toBe(value);
    }
    expect(get(container, 'processName')).toBe('api');
    expect(get(container, 'redis')).not.toBeNull();
    expect(get(container, 'mailer')).toBeInstanceOf(OutboxMailer);
  });

  it('uses a relay mailer when relays are configured, and in-memory adapters without Redis', async () => {
    const config = {
      ...environment.config,
      redisUrl: undefined,
      smtp: { ...environment.config.smtp, relays: ['smtp://127.0.0.1:2'] },
    };
    const container = createContainer(config, 'worker');
    expect(get(container, 'redis')).toBeNull();
    expect(get(container, 'mailer')).toBeInstanceOf(RelayMailer);
    const limited = await get(container, 'limiters').login.consume('k');
    expect(limited.allowed).toBe(true);
    await get(container, 'notifier').changed('x@alias.test');
    await disposeContainer(container);
  });

  it('queues system mail for the workers when relays and Redis are both configured', () => {
    const config = {
      ...environment.config,
      smtp: { ...environment.config.smtp, relays: ['smtp://127.0.0.1:2'] },
    };
    const container = environment.container('api');
    expect(get(createContainerFor(config), 'mailer')).toBeInstanceOf(QueueMailer);
    expect(get(container, 'mailer')).toBeInstanceOf(OutboxMailer);
  });

  it('fails loudly when no database URL reaches a process', () => {
    const container = createContainer({ ...environment.config, databaseUrl: undefined }, 'api');
    expect(() => get(container, 'database')).toThrow(/DATABASE_URL/);
  });
});
