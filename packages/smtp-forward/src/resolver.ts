import { domainToUnicode } from 'node:url';
import { parseAddress } from './address.js';
import { SmtpForwardError } from './errors.js';

/**
 * How a disabled alias is refused: `reject` (550, permanent), `defer` (421: the session ends and
 * the sender's MTA retries the whole message later), `defer-recipient` (450 for this recipient
 * only; the session's other recipients go through now), or `discard` (250, dropped).
 */
export type DisabledAction = 'reject' | 'defer' | 'defer-recipient' | 'discard';

const DISABLED_ACTIONS: ReadonlySet<unknown> = new Set<DisabledAction>([
  'reject',
  'defer',
  'defer-recipient',
  'discard',
]);

/** True when `value` is a {@link DisabledAction} (resolvers written in JavaScript can return anything). */
export function isDisabledAction(value: unknown): value is DisabledAction {
  return DISABLED_ACTIONS.has(value);
}

/** What the resolver knows about one recipient. */
export interface ResolvedRecipient {
  /** Where mail for this alias goes. At least one address unless disabled. */
  destinations: readonly string[];
  /** Set when the alias exists but must not forward: `reject` (550), `defer` (421), `defer-recipient` (450) or `discard` (250, dropped). */
  disabled?: DisabledAction;
  /** Why the alias is disabled; sent in the SMTP reply, so keep it short and public. */
  reason?: string;
}

/** Facts about the SMTP session a resolver may use. */
export interface ResolverContext {
  /** Envelope sender ('' for a bounce). */
  sender: string;
  /** Client IP address. */
  remoteAddress: string;
  /** Session id (also in the logs). */
  sessionId: string;
}

/** The resolver port: null means unknown (rejected at RCPT with 550 5.1.1). */
export type Resolver = (
  address: string,
  context: ResolverContext,
) => Promise<ResolvedRecipient | null>;

/** A static map value: one destination, several, or a full ResolvedRecipient. */
export type StaticEntry = string | readonly string[] | ResolvedRecipient;

/** Options of {@link staticResolver}. */
export interface StaticResolverOptions {
  /** Sub-addressing separator: `alias+tag@domain` resolves as `alias@domain` and the tag is kept. Default: '+'. Set '' to disable. */
  separator?: string;
}

function normalise(alias: string, entry: StaticEntry): ResolvedRecipient {
  if (typeof entry === 'string') return { destinations: [entry] };
  if (Array.isArray(entry)) return { destinations: [...(entry as readonly string[])] };
  const resolved = entry as ResolvedRecipient;
  if (resolved.disabled !== undefined && !isDisabledAction(resolved.disabled)) {
    throw new SmtpForwardError(
      'INVALID_OPTIONS',
      `staticResolver: ${alias} has disabled: ${JSON.stringify(resolved.disabled)}; expected 'reject', 'defer', 'defer-recipient' or 'discard'`,
    );
  }
  return resolved;
}

/**
 * The address with an IDN domain in Unicode: smtp-server hands us `münchen.example` for
 * `xn--mnchen-3ya.example`, so a map written either way matches mail sent either way.
 */
function unicodeDomain(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0 || !address.includes('xn--', at)) return address;
  const unicode = domainToUnicode(address.slice(at + 1));
  return unicode === '' ? address : `${address.slice(0, at + 1)}${unicode}`;
}

function addTag(destination: string, tag: string, separator: string): string {
  const at = destination.lastIndexOf('@');
  if (at < 0 || tag === '') return destination;
  return `${destination.slice(0, at)}${separator}${tag}${destination.slice(at)}`;
}

/**
 * A resolver over a fixed map: exact aliases (case-insensitive), `*@domain` catch-alls,
 * and `alias+tag@domain` sub-addressing that keeps the tag on each destination.
 */
export function staticResolver(
  map: Readonly<Record<string, StaticEntry>>,
  options: StaticResolverOptions = {},
): Resolver {
  const separator = options.separator ?? '+';
  const table = new Map<string, ResolvedRecipient>();
  for (const [alias, entry] of Object.entries(map))
    table.set(unicodeDomain(alias.toLowerCase()), normalise(alias, entry));
  return (address) => {
    const parsed = parseAddress(unicodeDomain(address));
    if (parsed === null) return Promise.resolve(null);
    const local = parsed.local.toLowerCase();
    const exact = table.get(`${local}@${parsed.domain}`);
    if (exact !== undefined) return Promise.resolve(exact);
    if (separator !== '') {
      const cut = local.indexOf(separator);
      if (cut > 0) {
        const base = table.get(`${local.slice(0, cut)}@${parsed.domain}`);
        const tag = parsed.local.slice(cut + separator.length);
        if (base !== undefined) {
          return Promise.resolve({
            ...base,
            destinations: base.destinations.map((d) => addTag(d, tag, separator)),
          });
        }
      }
    }
    return Promise.resolve(table.get(`*@${parsed.domain}`) ?? null);
  };
}
