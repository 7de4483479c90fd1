import { resolve as resolveDns } from 'node:dns/promises';
import { request } from 'node:https';
import { parsePolicy, resolvePolicy } from 'mailauth/lib/mta-sts.js';
import type { MTASTSOptions } from 'mailauth';
import type { DnsResolver } from './ports.js';
import { isPublicAddress } from './transport.js';
import type { MtaStsLookup, MtaStsPolicy } from './transport.js';

/** Options of {@link mtaStsPolicy}. */
export interface MtaStsPolicyOptions {
  /** Policies kept in memory at most; the least recently used goes first. Default: 10_000. */
  maxEntries?: number;
  /** DNS lookups (`_mta-sts` TXT, the policy host's A/AAAA). Default: node:dns/promises resolve. */
  resolver?: DnsResolver;
  /** Time one policy fetch over HTTPS may take in all, in ms. Default: 15_000. */
  timeoutMs?: number;
  /**
   * Which addresses a policy host may be fetched from. Default: public unicast addresses only (as
   * `MxOptions.allowAddress`), so a domain whose `mta-sts.` host points at loopback or a private
   * network gets no request into internal services; its policy counts as unfetchable.
   */
  allowAddress?: (address: string) => boolean;
}

/** @internal Test seams: the HTTPS port and a CA for a local policy host. */
export interface MtaStsTestOptions extends MtaStsPolicyOptions {
  port?: number;
  ca?: string;
}

/** RFC 8461 §3.3 suggests 64 KiB as the largest policy a sender accepts. */
const MAX_POLICY_BYTES = 64 * 1024;

interface Cached {
  id: string;
  policy: MtaStsPolicy | null;
  expiresAt: number;
}

async function addressesOf(resolver: DnsResolver, name: string): Promise<string[]> {
  for (const rrtype of ['A', 'AAAA']) {
    try {
      const found = (await resolver(name, rrtype)) as unknown[];
      const addresses = found.filter((a): a is string => typeof a === 'string');
      if (addresses.length > 0) return addresses;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'ENOTFOUND' && code !== 'ENODATA') throw error;
    }
  }
  throw Object.assign(new Error(`no address for ${name}`), { code: 'ENOTFOUND' });
}

/**
 * GETs `https://mta-sts.<domain>/.well-known/mta-sts.txt` with a verified certificate, refusing
 * redirects (RFC 8461 §3.3), bodies over 64 KiB and fetches that take longer than `timeoutMs`.
 */
async function fetchPolicyText(domain: string, options: MtaStsTestOptions): Promise<string> {
  const servername = `mta-sts.${domain}`;
  const allowAddress = options.allowAddress ?? isPublicAddress;
  // The checked address is the one connected to: the host is never looked up again.
  const address = (await addressesOf(options.resolver ?? resolveDns, servername)).find((found) =>
    allowAddress(found),
  );
  if (address === undefined)
    throw Object.assign(new Error(`${servername} is at a private address`), { code: 'EPRIVATE' });
  const timeoutMs = options.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const req = request({
      host: address,
      servername,
      port: options.port ?? 443,
      path: '/.well-known/mta-sts.txt',
      method: 'GET',
      headers: { host: servername, accept: 'text/plain' },
      rejectUnauthorized: true,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      agent: false,
    });
    const fail = (error: Error): void => {
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    const timer = setTimeout(() => {
      fail(Object.assign(new Error(`fetching ${servername} timed out`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    req.on('error', fail);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        // A redirect is never followed; nor is any other answer than 200 a policy.
        res.resume();
        fail(
          Object.assign(new Error(`${servername} answered ${res.statusCode ?? '-'}`), {
            code: 'EHTTP',
          }),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_POLICY_BYTES) {
          fail(Object.assign(new Error(`${servername} policy too large`), { code: 'ETOOBIG' }));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
    req.end();
  });
}

/** @internal {@link mtaStsPolicy} with test seams. */
export function createMtaStsLookup(options: MtaStsTestOptions = {}): MtaStsLookup {
  const maxEntries = Math.max(1, options.maxEntries ?? 10_000);
  const dns: MTASTSOptions =
    options.resolver === undefined
      ? {}
      : { resolver: options.resolver as NonNullable<MTASTSOptions['resolver']> };
  // Insertion order is recency: a hit moves its entry to the end, the first one is evicted.
  const cache = new Map<string, Cached>();
  const remember = (domain: string, entry: Cached): void => {
    cache.delete(domain);
    cache.set(domain, entry);
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
  };
  return async (name) => {
    const domain = name.toLowerCase().replace(/\.$/, '');
    const cached = cache.get(domain);
    const fresh = cached !== undefined && cached.expiresAt > Date.now() ? cached : undefined;
    if (fresh !== undefined) remember(domain, fresh);
    let id: string | false;
    try {
      id = await resolvePolicy(domain, dns);
    } catch {
      // DNS failed: a policy fetched before still holds until its max_age runs out.
      return fresh?.policy ?? null;
    }
    // A TXT record that vanished does not end a cached policy either (RFC 8461 §10.2): an
    // attacker who can spoof DNS could otherwise strip `enforce` and read the mail in plaintext.
    if (id === false) return fresh?.policy ?? null;
    if (fresh !== undefined && fresh.id === id) return fresh.policy;
    let parsed: ReturnType<typeof parsePolicy>;
    try {
      parsed = parsePolicy(await fetchPolicyText(domain, options));
    } catch {
      // RFC 8461 §5.1: no fetchable policy and none cached is no MTA-STS; a cached one stays.
      return fresh?.policy ?? null;
    }
    const mx = parsed.mx ?? [];
    const policy: MtaStsPolicy | null =
      parsed.mode === 'none' && mx.length === 0 ? null : { mode: parsed.mode, mx };
    remember(domain, { id, policy, expiresAt: Date.now() + (parsed.maxAge ?? 0) * 1000 });
    return policy;
  };
}

/**
 * MTA-STS lookups (RFC 8461) over DNS and HTTPS, cached in memory for each policy's max_age: a
 * new policy is fetched when the DNS id changes, and a cached one stays in force while it is
 * valid even when DNS or the policy host fails. Pass it as `transport.mx.mtaSts`.
 */
export function mtaStsPolicy(options: MtaStsPolicyOptions = {}): MtaStsLookup {
  return createMtaStsLookup(options);
}
