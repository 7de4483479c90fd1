import { createPrivateKey } from 'node:crypto';
import type { Readable } from 'node:stream';
import { authenticate } from 'mailauth';
import { arcSealFields, dkimSignFields } from './dkim.js';
export { relaxedBodyHash } from './dkim.js';
import type { HeaderField } from './headers.js';
import type { DnsResolver } from './ports.js';

/** A DKIM key of the forwarding domain. */
export interface DkimOptions {
  /** Selector published at `<selector>._domainkey.<domain>`. */
  selector: string;
  /** Private key, PEM (RSA 2048+ or Ed25519). */
  privateKey: string;
  /** `rsa-sha256` or `ed25519-sha256`. Default: detected from the key. */
  algorithm?: 'rsa-sha256' | 'ed25519-sha256';
  /** Signing domain. Default: the forwarder's `domain`. */
  domain?: string;
}

/** A DKIM key bound to the domain it signs for (`d=`). */
export interface DkimKey extends DkimOptions {
  /** Signing domain, matched case-insensitively against the alias domain of each message. */
  domain: string;
}

/** What a per-message key choice is told. */
export interface DkimSelectContext {
  /** The signing domain wanted: the domain of the message's first alias (the rewritten `From`'s domain). */
  domain: string;
  /** Every alias the message was accepted for, lower case. */
  aliases: readonly string[];
  /** The forwarder's id of the message. */
  messageId: string;
}

/**
 * Chooses the DKIM key per message, by the alias domain: first an entry of `keys` for that
 * domain, then `select`, then `fallback`; with none of them the message is sent unsigned.
 */
export interface DkimSelection {
  /** Keys known up front, one per signing domain. */
  keys?: readonly DkimKey[];
  /** Looks a key up (e.g. in a database); null when the domain has none. A rejection answers 451. */
  select?: (context: DkimSelectContext) => Promise<DkimOptions | null> | DkimOptions | null;
  /** Used when neither `keys` nor `select` has a key; its `domain` defaults to the forwarder's. */
  fallback?: DkimOptions;
}

/** The `dkim` option: one key for every message, or a choice per message. */
export type DkimSigning = DkimOptions | DkimSelection;

/** True when `dkim` chooses its key per message rather than being one key. */
export function isDkimSelection(dkim: DkimSigning): dkim is DkimSelection {
  return !('privateKey' in dkim);
}

/**
 * Returns the key (with its signing domain) for one message, or null to leave it unsigned.
 * A key returned by `select` without a `domain` signs for `context.domain`.
 */
export async function chooseDkimKey(
  dkim: DkimSigning,
  context: DkimSelectContext,
  forwarderDomain: string,
): Promise<DkimKey | null> {
  if (!isDkimSelection(dkim)) return { ...dkim, domain: dkim.domain ?? forwarderDomain };
  const wanted = context.domain.toLowerCase();
  const listed = dkim.keys?.find((key) => key.domain.toLowerCase() === wanted);
  if (listed !== undefined) return listed;
  if (dkim.select !== undefined) {
    const selected = await dkim.select(context);
    if (selected !== null) return { ...selected, domain: selected.domain ?? wanted };
  }
  if (dkim.fallback !== undefined)
    return { ...dkim.fallback, domain: dkim.fallback.domain ?? forwarderDomain };
  return null;
}

/** The key used to add an ARC set. Same shape as {@link DkimOptions}. */
export type ArcOptions = DkimOptions;

/** Inbound checks of SPF, DKIM and DMARC. */
export interface AuthenticationOptions {
  /** DNS lookups (`(name, rrtype) => records`); tests answer from a map. Default: the system resolver. */
  dnsResolver?: DnsResolver;
  /** Refuse (550 5.7.1) mail whose DMARC fails under a `p=reject` policy. Default: false. */
  rejectDmarcFailures?: boolean;
  /** Time the inbound checks (DNS included) may take, in ms; then the sender gets 451 and retries. Default: 15_000. */
  timeoutMs?: number;
}

/** What the inbound checks found. */
export interface InboundVerdict {
  /** The Authentication-Results value (after the field name). */
  authResults: string;
  /** DMARC result (`pass`, `fail`, `none`, ...). */
  dmarc: string;
  /** Published DMARC policy of the From domain (`reject`, `quarantine`, `none`, or '' when none). */
  dmarcPolicy: string;
  /** ARC chain status of the incoming message (`none`, `pass`, `fail`). */
  arc: string;
  /** ARC instance of the incoming message (0 when none). */
  arcInstance: number;
  /**
   * Whether a new ARC set may be added (RFC 8617 §5.1): always when the chain passed or is absent;
   * when it failed, only if its last seal did not already say `cv=fail`.
   */
  arcSealable: boolean;
}

// Parsing a PEM key costs about 1 ms (RSA); keys rarely change, so detect the algorithm once per key.
const detected = new Map<string, 'rsa-sha256' | 'ed25519-sha256'>();

function algorithmOf(options: DkimOptions): 'rsa-sha256' | 'ed25519-sha256' {
  if (options.algorithm !== undefined) return options.algorithm;
  let algorithm = detected.get(options.privateKey);
  if (algorithm === undefined) {
    algorithm =
      createPrivateKey(options.privateKey).asymmetricKeyType === 'ed25519'
        ? 'ed25519-sha256'
        : 'rsa-sha256';
    if (detected.size > 100) detected.clear();
    detected.set(options.privateKey, algorithm);
  }
  return algorithm;
}

/** Runs SPF, DKIM, DMARC and ARC verification on the incoming message. */
export async function verifyInbound(
  message: Readable | Buffer,
  context: { ip: string; helo: string; sender: string; mta: string },
  options: AuthenticationOptions,
): Promise<InboundVerdict> {
  const result = await authenticate(message, {
    ip: context.ip,
    helo: context.helo,
    sender: context.sender,
    mta: context.mta,
    disableBimi: true,
    ...(options.dnsResolver === undefined ? {} : { resolver: options.dnsResolver as never }),
  });
  const arHeader = /Authentication-Results:\s*([\s\S]*?)\r\n(?![ \t])/i.exec(result.headers);
  return {
    authResults: (arHeader?.[1] ?? `${context.mta}; none`).replace(/\r\n/g, ''),
    dmarc: result.dmarc === false ? 'none' : result.dmarc.status.result,
    dmarcPolicy: result.dmarc === false ? '' : (result.dmarc.p ?? ''),
    arc: result.arc === false ? 'none' : result.arc.status.result,
    arcInstance: result.arc === false || result.arc.i === false ? 0 : result.arc.i,
    arcSealable:
      result.arc === false ||
      result.arc.status.result === 'none' ||
      result.arc.status.result === 'pass' ||
      (result.arc.status as { shouldSeal?: boolean }).shouldSeal === true,
  };
}

/** Returns the ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results lines to prepend. */
export async function arcSeal(
  fields: readonly HeaderField[],
  bodyHash: string,
  options: ArcOptions & { domain: string },
  verdict: { authResults: string; cv: 'none' | 'pass' | 'fail'; instance: number },
  now: Date,
): Promise<Buffer> {
  const sealed = await arcSealFields(
    fields,
    bodyHash,
    { instance: verdict.instance, cv: verdict.cv, authResults: verdict.authResults },
    {
      domain: options.domain,
      selector: options.selector,
      privateKey: options.privateKey,
      algorithm: algorithmOf(options),
      timestamp: now.getTime(),
    },
  );
  return Buffer.from(sealed, 'latin1');
}

/**
 * Returns the DKIM-Signature line to prepend. Signed here rather than with mailauth, whose signer
 * parses the PEM key for every message (about 1 ms with RSA); mailauth verifies it in the tests.
 */
export function dkimSignature(
  fields: readonly HeaderField[],
  bodyHash: string,
  options: DkimOptions & { domain: string },
  now: Date,
): Promise<string> {
  return dkimSignFields(fields, bodyHash, {
    domain: options.domain,
    selector: options.selector,
    privateKey: options.privateKey,
    algorithm: algorithmOf(options),
    timestamp: now.getTime(),
  });
}
