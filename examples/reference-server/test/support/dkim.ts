import { authenticate } from 'mailauth';
import type { TestDatabase } from './database.js';
import type { Captured } from './capture.js';

/** mailauth's DKIM verdicts on a captured message, with DNS answered from the domains table now. */
export async function dkimVerdicts(
  database: TestDatabase,
  message: Captured,
): Promise<[string | undefined, string][]> {
  const keys = await database.db
    .selectFrom('domains')
    .select(['name', 'dkim_selector', 'dkim_public_key'])
    .execute();
  const dns = (name: string, type: string): Promise<string[][]> => {
    const key = keys.find(
      (k) => type === 'TXT' && name === `${k.dkim_selector}._domainkey.${k.name}`,
    );
    return key === undefined
      ? Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }))
      : Promise.resolve([[`v=DKIM1; k=rsa; p=${key.dkim_public_key}`]]);
  };
  const result = await authenticate(message.data, {
    ip: '127.0.0.1',
    helo: 'alias.test',
    sender: message.from,
    mta: 'dest.test',
    resolver: dns,
    disableBimi: true,
    disableArc: true,
  });
  return result.dkim.results.map(
    (entry: { signingDomain?: string; status: { result: string } }) => [
      entry.signingDomain,
      entry.status.result,
    ],
  );
}
