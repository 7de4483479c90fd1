import { generateKeyPair, randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { Expression, ExpressionBuilder, Kysely, Selectable, SqlBool } from 'kysely';
import { isUniqueViolation } from './db/connect.js';
import type { Database, DomainsTable } from './db/schema.js';
import { ServerError } from './errors.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A domain as the API shows it (never its private key). */
export interface Domain {
  id: string;
  name: string;
  /** True for the service's shared domain every user may create aliases on. */
  shared: boolean;
  verified: boolean;
  createdAt: number;
}

/** One DNS record to publish. */
export interface DnsRecord {
  type: 'MX' | 'TXT';
  name: string;
  value: string;
  priority?: number;
}

/** The DNS lookups domain verification needs; `node:dns/promises` satisfies it, tests pass a map. */
export interface DnsResolver {
  resolveTxt(name: string): Promise<string[][]>;
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
}

/** A DKIM key pair: PEM private key, base64 DER public key (the `p=` of the record). */
export interface DkimKey {
  privateKeyPem: string;
  publicKeyBase64: string;
}

/** Options of `DomainRepository`. */
export interface DomainRepositoryOptions {
  /** Host name of the MX every domain points at (the SMTP process). */
  mxHost: string;
  /** DKIM selector. Default: 'postern'. */
  dkimSelector?: string;
  /** Epoch-ms clock. Default: Date.now. */
  now?: () => number;
  /** Key generator. Default: RSA 2048 from node:crypto. */
  generateDkimKey?: () => Promise<DkimKey>;
  /**
   * Most unverified domains one user may hold at once. Each costs an RSA key generation and needs
   * no DNS, so without a cap one account could pile them up. Default: 10.
   */
  maxUnverifiedPerUser?: number;
}

const DOMAIN_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/** Generates an RSA 2048 DKIM key (the size every receiver accepts). */
export async function generateRsaDkimKey(): Promise<DkimKey> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyBase64: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
  };
}

function domainTaken(cause?: unknown): ServerError {
  return new ServerError('DOMAIN_TAKEN', 'that domain is already registered', {
    status: 409,
    field: 'name',
    ...(cause === undefined ? {} : { cause }),
  });
}

function toDomain(row: Selectable<DomainsTable>): Domain {
  return {
    id: row.id,
    name: row.name,
    shared: row.user_id === null,
    verified: row.verified_at !== null,
    createdAt: row.created_at,
  };
}

/** The row that owns a name: a verified domain, or a shared one (no owner). Unverified claims do not. */
function owned(eb: ExpressionBuilder<Database, 'domains'>): Expression<SqlBool> {
  return eb.or([eb('verified_at', 'is not', null), eb('user_id', 'is', null)]);
}

/** Custom and shared domains, their DKIM keys, the DNS records to publish and their verification. */
export class DomainRepository {
  readonly #db: Kysely<Database>;
  readonly #options: Required<DomainRepositoryOptions>;

  constructor(db: Kysely<Database>, options: DomainRepositoryOptions) {
    this.#db = db;
    this.#options = {
      dkimSelector: 'postern',
      now: Date.now,
      generateDkimKey: generateRsaDkimKey,
      maxUnverifiedPerUser: 10,
      ...options,
    };
  }

  /** Creates the shared domain (verified, no owner) if it does not exist yet; safe to run from every process. */
  async ensureShared(name: string): Promise<Domain> {
    const existing = await this.#db
      .selectFrom('domains')
      .selectAll()
      .where('name', '=', name.toLowerCase())
      .where(owned)
      .executeTakeFirst();
    if (existing !== undefined) return toDomain(existing);
    const key = await this.#options.generateDkimKey();
    const now = this.#options.now();
    await this.#db
      .insertInto('domains')
      .values({
        id: randomUUID(),
        user_id: null,
        name: name.toLowerCase(),
        verification_token: randomBytes(16).toString('hex'),
        dkim_selector: this.#options.dkimSelector,
        dkim_private_key: key.privateKeyPem,
        dkim_public_key: key.publicKeyBase64,
        verified_at: now,
        created_at: now,
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const row = await this.#db
      .selectFrom('domains')
      .selectAll()
      .where('name', '=', name.toLowerCase())
      .where(owned)
      .executeTakeFirstOrThrow();
    return toDomain(row);
  }

  /**
   * Adds a custom domain for a user, unverified until its DNS records are found. `DOMAIN_TAKEN`
   * when the name is verified by someone (or shared), or this user has claimed it already; another
   * user's unverified claim does not stop it: whoever proves the name in DNS first gets it.
   */
  async add(userId: string, name: string): Promise<Domain> {
    const normalized = name.trim().toLowerCase().replace(/\.$/, '');
    if (!DOMAIN_NAME.test(normalized))
      throw new ServerError('VALIDATION_FAILED', 'name is not a domain name', {
        status: 400,
        field: 'name',
      });
    // Cheap refusals first: an RSA key generation is costly work on the libuv thread pool (shared
    // with file I/O and dns.lookup), so a name that is taken must not cost one.
    const taken = await this.#db
      .selectFrom('domains')
      .select('id')
      .where('name', '=', normalized)
      .where((eb) => eb.or([owned(eb), eb('user_id', '=', userId)]))
      .executeTakeFirst();
    if (taken !== undefined) throw domainTaken();
    const pending = await this.#db
      .selectFrom('domains')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('user_id', '=', userId)
      .where('verified_at', 'is', null)
      .executeTakeFirstOrThrow();
    if (Number(pending.count) >= this.#options.maxUnverifiedPerUser)
      throw new ServerError(
        'CONFLICT',
        `at most ${this.#options.maxUnverifiedPerUser} unverified domains; verify or delete one first`,
        { status: 409, field: 'name' },
      );
    const key = await this.#options.generateDkimKey();
    try {
      const row = await this.#db
        .insertInto('domains')
        .values({
          id: randomUUID(),
          user_id: userId,
          name: normalized,
          verification_token: randomBytes(16).toString('hex'),
          dkim_selector: this.#options.dkimSelector,
          dkim_private_key: key.privateKeyPem,
          dkim_public_key: key.publicKeyBase64,
          verified_at: null,
          created_at: this.#options.now(),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toDomain(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw domainTaken(error);
      throw error;
    }
  }

  /** The shared domains and the user's own. */
  async list(userId: string): Promise<Domain[]> {
    const rows = await this.#db
      .selectFrom('domains')
      .selectAll()
      .where((eb) => eb.or([eb('user_id', '=', userId), eb('user_id', 'is', null)]))
      .orderBy('created_at')
      .execute();
    return rows.map(toDomain);
  }

  /** The DNS records the owner must publish: MX, SPF, DKIM, DMARC and the ownership TXT. */
  async dnsRecords(userId: string, domainId: string): Promise<DnsRecord[]> {
    const row = await this.#own(userId, domainId);
    return [
      { type: 'MX', name: row.name, value: this.#options.mxHost, priority: 10 },
      { type: 'TXT', name: row.name, value: 'v=spf1 mx -all' },
      {
        type: 'TXT',
        name: `${row.dkim_selector}._domainkey.${row.name}`,
        value: `v=DKIM1; k=rsa; p=${row.dkim_public_key}`,
      },
      { type: 'TXT', name: `_dmarc.${row.name}`, value: `v=DMARC1; p=quarantine; adkim=s; aspf=r` },
      {
        type: 'TXT',
        name: `_postern.${row.name}`,
        value: `postern-verification=${row.verification_token}`,
      },
    ];
  }

  /**
   * Looks the records up through `resolver` and marks the domain verified when the ownership TXT,
   * the MX and the DKIM key are published. Returns which checks passed.
   */
  async verify(
    userId: string,
    domainId: string,
    resolver: DnsResolver,
  ): Promise<{ verified: boolean; checks: Record<'ownership' | 'mx' | 'dkim', boolean> }> {
    const row = await this.#own(userId, domainId);
    const txt = async (name: string): Promise<string[]> =>
      (await resolver.resolveTxt(name).catch(() => [])).map((chunks) => chunks.join(''));
    const ownership = (await txt(`_postern.${row.name}`)).includes(
      `postern-verification=${row.verification_token}`,
    );
    const mxHost = this.#options.mxHost.toLowerCase().replace(/\.$/, '');
    const mx = (await resolver.resolveMx(row.name).catch(() => [])).some(
      (record) => record.exchange.toLowerCase().replace(/\.$/, '') === mxHost,
    );
    const dkim = (await txt(`${row.dkim_selector}._domainkey.${row.name}`)).some((value) =>
      value.replace(/\s+/g, '').includes(`p=${row.dkim_public_key}`),
    );
    const verified = ownership && mx && dkim;
    if (verified && row.verified_at === null) {
      try {
        await this.#db
          .updateTable('domains')
          .set({ verified_at: this.#options.now() })
          .where('id', '=', row.id)
          .execute();
      } catch (error) {
        // Another claim of the name was verified first (its owner published its own token).
        if (isUniqueViolation(error)) throw domainTaken(error);
        throw error;
      }
      // The name is proven: other users' unverified claims of it go (they can never verify).
      await this.#db
        .deleteFrom('domains')
        .where('name', '=', row.name)
        .where('verified_at', 'is', null)
        .where('id', '!=', row.id)
        .execute();
    }
    return { verified: verified || row.verified_at !== null, checks: { ownership, mx, dkim } };
  }

  /**
   * Deletes a custom domain; its aliases and their logs go with it (ON DELETE CASCADE).
   * Returns the deleted domain's name.
   */
  async delete(userId: string, domainId: string): Promise<string> {
    const row = await this.#db
      .deleteFrom('domains')
      .where('id', '=', domainId)
      .where('user_id', '=', userId)
      .returning('name')
      .executeTakeFirst();
    if (row === undefined) throw new ServerError('NOT_FOUND', 'no such domain', { status: 404 });
    return row.name;
  }

  /** The DKIM signing key of a domain by name, for the SMTP process. */
  async signingKey(name: string): Promise<{ selector: string; privateKeyPem: string } | null> {
    const row = await this.#db
      .selectFrom('domains')
      .select(['dkim_selector', 'dkim_private_key'])
      .where('name', '=', name.toLowerCase())
      .where(owned)
      .executeTakeFirst();
    return row === undefined
      ? null
      : { selector: row.dkim_selector, privateKeyPem: row.dkim_private_key };
  }

  async #own(userId: string, domainId: string): Promise<Selectable<DomainsTable>> {
    const row = await this.#db
      .selectFrom('domains')
      .selectAll()
      .where('id', '=', domainId)
      .executeTakeFirst();
    if (row === undefined || row.user_id !== userId)
      throw new ServerError('NOT_FOUND', 'no such domain', { status: 404 });
    return row;
  }
}
