import { describe, expect, it } from 'vitest';
import { toEnvName } from './env-name.js';

describe('toEnvName', () => {
  it.each([
    ['port', 'PORT'],
    ['databaseUrl', 'DATABASE_URL'],
    ['smtpTLSPort', 'SMTP_TLS_PORT'],
    ['DATABASE_URL', 'DATABASE_URL'],
    ['log-level', 'LOG_LEVEL'],
    ['s3Bucket', 'S3_BUCKET'],
    ['apiV2Url', 'API_V2_URL'],
    ['_private', 'PRIVATE'],
  ])('maps %j to %j', (key, expected) => {
    expect(toEnvName(key)).toBe(expected);
  });
});
