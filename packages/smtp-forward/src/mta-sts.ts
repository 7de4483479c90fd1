import { getPolicy } from 'mailauth/lib/mta-sts.js';
import type { MTASTSPolicy } from 'mailauth';
import type { MtaStsLookup, MtaStsPolicy } from './transport.js';

/** Options of {@link mtaStsPolicy}. */
export interface MtaStsPolicyOptions {
  /** Policies kept in memory at most. Default: 10_000. */
  maxEntries?: number;
}

/**
 * MTA-STS lookups over DNS and HTTPS with mailauth, cached in memory by policy id and max-age
 * (mailauth renews a policy when its DNS id changes). Pass it as `transport.mx.mtaSts`.
 */
export function mtaStsPolicy(options: MtaStsPolicyOptions = {}): MtaStsLookup {
  const maxEntries = options.maxEntries ?? 10_000;
  const known = new Map<string, MTASTSPolicy>();
  return async (domain) => {
    const { policy } = await getPolicy(domain, known.get(domain));
    if (known.size >= maxEntries) known.clear();
    known.set(domain, policy);
    if (policy.mode === 'none' && (policy.mx ?? []).length === 0) return null;
    const result: MtaStsPolicy = { mode: policy.mode, mx: policy.mx ?? [] };
    return result;
  };
}
