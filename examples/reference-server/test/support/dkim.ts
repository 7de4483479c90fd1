import { authenticate } from 'mailauth';
import type { Captured } from './capture.js';
import type { TestDatabase } from './database.js';

/** A DKIM public key as published at `<selector>._domainkey.<name>`. */
export interface PublishedKey {
  name: string;
  selector: string;
  publicKey: string;
}

/** mailauth's DKIM verdicts ([signing domain, result]) on a captured message, DNS answered from `keys`. */
export async function dkimVerdictsFor(
  message: Captured,
  keys: readonly PublishedKey[],
): Promise<[string | undefined, string][]> {
  const dns = (name: string, type: string): Promise<string[][]> => {
    const key = keys.find((k) => type === 'TXT' && name === `${k.selector}._domainkey.${k.name}`);
    return key === undefined
      ? Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }))
      : Promise.resolve([[`v=DKIM1; k=rsa; p=${key.publicKey}`]]);
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

/** The same, with DNS answered from the domains table now. */
export async function dkimVerdicts(
  database: TestDatabase,
  message: Captured,
): Promise<[string | undefined, string][]> {
  const rows = await database.db
    .selectFrom('domains')
    .select(['name', 'dkim_selector', 'dkim_public_key'])
    .execute();
  return dkimVerdictsFor(
    message,
    rows.map((row) => ({
      name: row.name,
      selector: row.dkim_selector,
      publicKey: row.dkim_public_key,
    })),
  );
}
