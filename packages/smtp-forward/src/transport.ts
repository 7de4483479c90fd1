import { lookup, resolveMx } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import type { SMTPPoolOptions } from 'nodemailer/lib/smtp-pool';
import { maskEmail } from './address.js';
import { SmtpForwardError } from './errors.js';
import type { Logger, Policy } from './ports.js';
import { NEVER_ABORTED } from './ports.js';

/** One smarthost. */
export interface RelayOptions {
  /** Host name or IP. */
  host: string;
  /** Port. Default: 25 (587 is also common with `auth`). */
  port?: number;
  /** Implicit TLS (port 465). Default: false (STARTTLS is used when offered). */
  secure?: boolean;
  /** Refuse to send without STARTTLS. Default: false. */
  requireTls?: boolean;
  /** Credentials for the relay. */
  auth?: { user: string; pass: string };
  /** TLS options (e.g. `{ rejectUnauthorized: false }` for a test relay, `ca`, `servername`). */
  tls?: Record<string, unknown>;
}

/** Direct delivery to each recipient domain's MX hosts. */
export interface MxOptions {
  /**
   * MX lookup; tests point it at local servers. Default: node:dns/promises resolveMx. A rejection
   * with code `ENODATA` means no MX records (the domain itself is the host), `ENOTFOUND` means no
   * such domain (a permanent failure); an empty exchange or `.` is a null MX (RFC 7505: no mail).
   */
  resolveMx?: (domain: string) => Promise<{ exchange: string; priority: number }[]>;
  /** Address lookup (A/AAAA) of an MX host. Default: node:dns/promises lookup, every address. */
  resolveAddresses?: (host: string) => Promise<string[]>;
  /**
   * Which addresses MX hosts may be reached at. Default: public unicast addresses only, so a
   * domain whose MX points at loopback, private (RFC 1918, ULA), link-local, CGNAT, multicast or
   * reserved addresses gets nothing from us (no requests into internal services). Return true
   * for addresses you trust (tests, an internal MX).
   */
  allowAddress?: (address: string) => boolean;
  /** Port used on every MX host. Default: 25. */
  port?: number;
  /** TLS options for opportunistic STARTTLS. Default: `{ rejectUnauthorized: false }` (opportunistic, as MTAs do). */
  tls?: Record<string, unknown>;
  /**
   * MTA-STS policy lookup (RFC 8461). Under `enforce`, only MX hosts the policy lists are used and
   * STARTTLS with a valid certificate is required: no plaintext fallback. Default: no MTA-STS
   * (pass `mtaStsPolicy()` for lookups over DNS and HTTPS with mailauth).
   */
  mtaSts?: MtaStsLookup;
}

/** An MTA-STS policy, as published at `https://mta-sts.<domain>/.well-known/mta-sts.txt`. */
export interface MtaStsPolicy {
  mode: 'enforce' | 'testing' | 'none';
  /** Allowed MX patterns (`mx1.example.com`, `*.example.com`). */
  mx: readonly string[];
}

/** Returns the domain's MTA-STS policy, or null when it publishes none. */
export type MtaStsLookup = (domain: string) => Promise<MtaStsPolicy | null>;

/** True when `host` matches an MTA-STS `mx` pattern (a leading `*.` matches exactly one label). */
export function mxMatches(host: string, patterns: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((pattern) => {
    const p = pattern.toLowerCase().replace(/\.$/, '');
    if (p.startsWith('*.')) {
      const suffix = p.slice(1);
      return (
        name.endsWith(suffix) &&
        !name.slice(0, -suffix.length).includes('.') &&
        name.length > suffix.length
      );
    }
    return name === p;
  });
}

/** How mail leaves: relays tried in order, or direct MX delivery. */
export interface TransportOptions {
  /** Smarthosts, tried in order; a recipient refused or unreachable at one is tried at the next. */
  relays?: readonly RelayOptions[];
  /** Deliver directly to MX hosts instead of relays. */
  mx?: MxOptions;
  /** Connections kept open per relay. Default: 5. */
  maxConnections?: number;
  /** Time to establish a TCP connection, in ms. Default: 10_000. */
  connectionTimeoutMs?: number;
  /** Time to wait for the server greeting, in ms. Default: 10_000. */
  greetingTimeoutMs?: number;
  /** Inactivity allowed on an open connection, in ms. Default: 60_000. */
  socketTimeoutMs?: number;
  /** Name we announce in EHLO. Default: the forwarder's `domain`. */
  name?: string;
}

/** What happened to one destination. */
export interface DestinationResult {
  recipient: string;
  ok: boolean;
  /** Reply code, when the failure came with one. */
  responseCode?: number;
  /** True when the failure may pass on a later try. */
  temporary?: boolean;
  /** Short reason (server reply, or the error code). */
  response?: string;
  /** The relay that answered last, `host:port`. */
  relay?: string;
}

/** The outcome of delivering one message to all of its destinations. */
export interface DeliveryResult {
  results: DestinationResult[];
  attempts: number;
}

interface SendError extends Error {
  code?: string;
  /** Set on an MX selection that can never succeed (null MX, no such domain). */
  permanent?: boolean;
  responseCode?: number;
  response?: string;
  rejected?: string[];
  rejectedErrors?: SendError[];
  recipient?: string;
}

type Mailer = ReturnType<typeof nodemailer.createTransport>;

/**
 * Turns the relay's refusal of the message into an answer, as nodemailer already does when it
 * refuses only some recipients: every recipient refused at RCPT, or the message refused with a 5xx
 * after DATA. The relay works, so the policy (a circuit breaker, say) must not count it against
 * the relay: one mailbox answering 450 five times would otherwise cut off every message to it.
 * Anything else (no connection, a timeout, TLS, 421, MAIL FROM refused) stays a failure.
 */
function refusalsAsAnswer(error: unknown, recipients: readonly string[]): SendInfo {
  const failure = error as SendError;
  if (failure.rejected !== undefined && failure.rejectedErrors !== undefined)
    return { rejected: failure.rejected, rejectedErrors: failure.rejectedErrors };
  const code = failure.responseCode;
  if (failure.code === 'EMESSAGE' && code !== undefined && code >= 500) {
    const { response } = failure;
    return {
      rejected: [...recipients],
      rejectedErrors: recipients.map((recipient) => ({
        ...failure,
        recipient,
        responseCode: code,
        ...(response === undefined ? {} : { response }),
      })),
    };
  }
  throw error;
}

interface SendInfo {
  rejected?: unknown;
  rejectedErrors?: SendError[];
}

/** The part of nodemailer's transport contract (`transporter.send(mail, callback)`) used here. */
interface RawMail {
  data: { envelope: { from: string; to: string[] } };
  message: {
    getEnvelope(): { from: string; to: string[] };
    messageId(): string;
    getHeader(name: string): string;
    createReadStream(): Readable;
  };
}

interface RawTransporter {
  send(mail: RawMail, callback: (error: Error | null | undefined, info?: SendInfo) => void): void;
}

const TRANSIENT_CODES = new Set([
  'EABORTED',
  'ETLS',
  'ECONNECTION',
  'ESOCKET',
  'ETIMEDOUT',
  'EDNS',
  'EPROXY',
]);

interface Hop {
  key: string;
  options: SMTPPoolOptions;
}

/** The error an aborted attempt rejects with: transient, so the sender retries later. */
function abortError(signal: AbortSignal): SendError {
  const reason: unknown = signal.reason;
  const message = reason instanceof Error ? reason.message : 'attempt aborted';
  return Object.assign(new Error(`relay attempt aborted: ${message}`), { code: 'EABORTED' });
}

// An address in a server's reply (`550 5.1.1 <bob@example.com>: no such user`) is a private
// destination: it is masked before the reply reaches results, events and logs.
const ADDRESS_IN_TEXT = /[^\s<>()[\]"',;:]+@[^\s<>()[\]"',;:]+/g;

function shortReply(text: string | undefined, fallback: string): string {
  return (text ?? fallback)
    .replace(/[\r\n]+/g, ' ')
    .replace(ADDRESS_IN_TEXT, (address) => maskEmail(address))
    .slice(0, 200);
}

/** Addresses no MX host of a foreign domain may have (RFC 6890 special-purpose, not global). */
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');

/** True for a public unicast address: the default of `MxOptions.allowAddress`. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return !NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** A shuffled copy of `items` (Fisher–Yates); a stable sort of it keeps ties in random order. */
function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

async function lookupAddresses(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true });
  return found.map((entry) => entry.address);
}

/**
 * Pools kept at most. Direct MX delivery opens one per MX host address; past this many, the least
 * recently used idle pools are closed, so connections stay bounded however many domains mail goes to.
 */
const MAX_POOLS = 100;

/** Addresses tried per domain at most, over all its MX hosts (Postfix: smtp_mx_address_limit). */
const MAX_MX_ADDRESSES = 10;

/** An MX selection that failed for good: no delivery to this domain can succeed. */
function permanentFailure(code: string, responseCode: number, response: string): SendError {
  return Object.assign(new Error(response), { code, responseCode, response, permanent: true });
}

/** Sends messages through relays with failover, or to MX hosts. Pooled connections per host. */
export class Transport {
  readonly #options: TransportOptions;
  readonly #policy: Policy;
  readonly #logger: Logger;
  readonly #pools = new Map<string, Mailer>();
  readonly #name: string;
  // Relays never change after construction: their pool options are built once.
  #relays: Hop[] | undefined;

  constructor(options: TransportOptions, policy: Policy, logger: Logger, defaultName: string) {
    if ((options.relays === undefined || options.relays.length === 0) && options.mx === undefined) {
      throw new SmtpForwardError('INVALID_OPTIONS', 'transport needs relays or mx');
    }
    this.#options = options;
    this.#policy = policy;
    this.#logger = logger;
    this.#name = options.name ?? defaultName;
  }

  /**
   * Delivers to every recipient. `open` must return the whole message (a Buffer, or a fresh stream each time),
   * because a failed attempt is retried at the next hop.
   */
  async deliver(
    mailFrom: string,
    recipients: readonly string[],
    open: () => Readable | Buffer,
  ): Promise<DeliveryResult> {
    const results = new Map<string, DestinationResult>();
    let attempts = 0;
    const groups = new Map<string, string[]>();
    if (this.#options.relays !== undefined && this.#options.relays.length > 0) {
      groups.set('', [...recipients]);
    } else {
      for (const recipient of recipients) {
        const domain = recipient.slice(recipient.lastIndexOf('@') + 1).toLowerCase();
        groups.set(domain, [...(groups.get(domain) ?? []), recipient]);
      }
    }
    for (const [domain, group] of groups) {
      let hops: Hop[];
      try {
        hops = domain === '' ? this.#relayHops() : await this.#mxHops(domain);
      } catch (error) {
        const failure = error as SendError;
        for (const recipient of group) {
          results.set(
            recipient,
            failure.permanent === true
              ? {
                  recipient,
                  ok: false,
                  temporary: false,
                  ...(failure.responseCode === undefined
                    ? {}
                    : { responseCode: failure.responseCode }),
                  response: shortReply(failure.response, failure.message),
                }
              : {
                  recipient,
                  ok: false,
                  temporary: true,
                  response: shortReply(
                    failure.response,
                    `MX selection failed: ${failure.code ?? 'error'}`,
                  ),
                },
          );
        }
        continue;
      }
      let remaining = group;
      for (const hop of hops) {
        if (remaining.length === 0) break;
        attempts += 1;
        const pending = remaining;
        const streams: Readable[] = [];
        try {
          const info: SendInfo = await this.#policy.execute(({ signal }) =>
            this.#send(hop, mailFrom, pending, open, streams, signal).catch((error: unknown) =>
              refusalsAsAnswer(error, pending),
            ),
          );
          const rejected = new Set(
            (Array.isArray(info.rejected) ? (info.rejected as string[]) : []).map((r) =>
              r.toLowerCase(),
            ),
          );
          for (const recipient of pending) {
            if (!rejected.has(recipient.toLowerCase()))
              results.set(recipient, { recipient, ok: true, relay: hop.key });
          }
          const errors = info.rejectedErrors ?? [];
          this.#recordRejections(results, pending, rejected, errors, hop.key);
          remaining = pending.filter((r) => rejected.has(r.toLowerCase()));
          // A backup MX takes anything and bounces later: only a temporary refusal at one MX
          // host is worth the next one. Relays are the sender's own and all are tried.
          if (domain !== '')
            remaining = remaining.filter((r) => results.get(r)?.temporary === true);
        } catch (error) {
          const failure = error as SendError;
          this.#logger.warn(
            { relay: hop.key, code: failure.code, responseCode: failure.responseCode },
            'relay attempt failed',
          );
          const responseCode = failure.responseCode;
          // A failed TLS upgrade or a broken connection says nothing about the message: retry later.
          const transient = failure.code !== undefined && TRANSIENT_CODES.has(failure.code);
          for (const recipient of pending) {
            results.set(recipient, {
              recipient,
              ok: false,
              ...(responseCode === undefined ? {} : { responseCode }),
              temporary: transient || responseCode === undefined || responseCode < 500,
              response: shortReply(failure.response, failure.code ?? failure.message),
              relay: hop.key,
            });
          }
        } finally {
          // A stream the relay never read (refused before DATA) still holds a file descriptor.
          for (const stream of streams) stream.destroy();
        }
      }
    }
    return {
      results: recipients.map(
        (r) =>
          results.get(r) ?? { recipient: r, ok: false, temporary: true, response: 'not attempted' },
      ),
      attempts,
    };
  }

  /** Closes pooled connections. */
  close(): void {
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
  }

  #recordRejections(
    results: Map<string, DestinationResult>,
    pending: readonly string[],
    rejected: ReadonlySet<string>,
    errors: readonly SendError[],
    relay: string,
  ): void {
    for (const recipient of pending) {
      if (!rejected.has(recipient.toLowerCase())) continue;
      const error = errors.find((e) => e.recipient?.toLowerCase() === recipient.toLowerCase());
      const responseCode = error?.responseCode;
      results.set(recipient, {
        recipient,
        ok: false,
        ...(responseCode === undefined ? {} : { responseCode }),
        temporary: responseCode === undefined || responseCode < 500,
        response: shortReply(error?.response, 'recipient rejected'),
        relay,
      });
    }
  }

  #common(): SMTPPoolOptions {
    return {
      pool: true,
      maxConnections: this.#options.maxConnections ?? 5,
      maxMessages: Infinity,
      connectionTimeout: this.#options.connectionTimeoutMs ?? 10_000,
      greetingTimeout: this.#options.greetingTimeoutMs ?? 10_000,
      socketTimeout: this.#options.socketTimeoutMs ?? 60_000,
      name: this.#name,
    };
  }

  #relayHops(): Hop[] {
    this.#relays ??= (this.#options.relays ?? []).map((relay) => {
      const port = relay.port ?? 25;
      return {
        key: `${relay.host}:${port}`,
        options: {
          ...this.#common(),
          host: relay.host,
          port,
          secure: relay.secure ?? false,
          requireTLS: relay.requireTls ?? false,
          ...(relay.auth === undefined
            ? {}
            : { auth: { user: relay.auth.user, pass: relay.auth.pass } }),
          ...(relay.tls === undefined ? {} : { tls: relay.tls }),
        },
      };
    });
    return this.#relays;
  }

  async #mxHops(domain: string): Promise<Hop[]> {
    const mx = this.#options.mx!;
    const lookupMx = mx.resolveMx ?? resolveMx;
    let records: { exchange: string; priority: number }[];
    try {
      records = await lookupMx(domain);
    } catch (error) {
      const code = (error as SendError).code;
      if (code === 'ENOTFOUND')
        throw permanentFailure(code, 550, `550 5.1.2 Domain ${domain} does not exist`);
      if (code !== 'ENODATA') throw error;
      records = [];
    }
    // RFC 7505: a null MX (`0 .`, an empty exchange from node:dns) means the domain takes no mail.
    if (records.some((record) => record.exchange === '' || record.exchange === '.'))
      throw permanentFailure('ENULLMX', 556, '556 5.1.10 Recipient address has null MX');
    // RFC 5321: no MX means the domain itself is the host.
    if (records.length === 0) records = [{ exchange: domain, priority: 0 }];
    const port = mx.port ?? 25;
    const policy = mx.mtaSts === undefined ? null : await mx.mtaSts(domain);
    const enforce = policy?.mode === 'enforce';
    // RFC 5321 §5.1: hosts of equal preference are tried in random order, spreading the load.
    const sorted = shuffled(records).sort((a, b) => a.priority - b.priority);
    const allowed = enforce
      ? sorted.filter((record) => mxMatches(record.exchange, policy.mx))
      : sorted;
    if (allowed.length === 0) {
      throw Object.assign(new Error('no MX host matches the MTA-STS policy'), { code: 'EMTASTS' });
    }
    // Each host is reached at the addresses looked up here (never looked up again by nodemailer,
    // so the checked address is the one connected to), with its name for SNI and certificates.
    const resolveAddresses = mx.resolveAddresses ?? lookupAddresses;
    const allowAddress = mx.allowAddress ?? isPublicAddress;
    const hops: Hop[] = [];
    let refused = 0;
    let lookupError: Error | undefined;
    for (const record of allowed) {
      if (hops.length >= MAX_MX_ADDRESSES) break;
      const exchange = record.exchange.replace(/\.$/, '');
      let addresses: string[];
      try {
        addresses = isIP(exchange) === 0 ? await resolveAddresses(exchange) : [exchange];
      } catch (error) {
        lookupError = error instanceof Error ? error : new Error(String(error));
        continue;
      }
      for (const address of addresses) {
        if (hops.length >= MAX_MX_ADDRESSES) break;
        if (!allowAddress(address)) {
          refused += 1;
          continue;
        }
        const servername = isIP(exchange) === 0 ? { servername: exchange } : {};
        hops.push({
          key: `${exchange}[${address}]:${port}${enforce ? ':sts' : ''}`,
          options: enforce
            ? // MTA-STS enforce: a valid certificate for the MX name, and never plaintext.
              {
                ...this.#common(),
                host: address,
                port,
                ...servername,
                secure: false,
                requireTLS: true,
                tls: { ...mx.tls, rejectUnauthorized: true, servername: exchange },
              }
            : {
                ...this.#common(),
                host: address,
                port,
                ...servername,
                secure: false,
                tls: mx.tls ?? { rejectUnauthorized: false },
              },
        });
      }
    }
    if (hops.length === 0) {
      if (lookupError !== undefined || refused === 0)
        throw lookupError ?? Object.assign(new Error('MX hosts have no address'), { code: 'EDNS' });
      throw permanentFailure(
        'EPRIVATE',
        550,
        `550 5.4.4 MX hosts of ${domain} are at a private address`,
      );
    }
    return hops;
  }

  /**
   * Hands the message straight to the pooled SMTP transport. `Mailer.sendMail` would compile a
   * MimeNode per message (random Message-ID and boundary, plugin chain, a stream pipeline) only to
   * pass the raw bytes through: that was about a tenth of the CPU of plain forwarding. The pool may
   * ask for the stream again when it retries on a fresh connection, so each call opens a new one.
   */
  #send(
    hop: Hop,
    from: string,
    to: readonly string[],
    open: () => Readable | Buffer,
    streams: Readable[],
    signal: AbortSignal,
  ): Promise<SendInfo> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    const transporter = (this.#pool(hop) as unknown as { transporter: RawTransporter }).transporter;
    const envelope = { from, to: [...to] };
    const mail: RawMail = {
      data: { envelope },
      message: {
        getEnvelope: () => ({ from, to: [...to] }),
        messageId: () => '',
        getHeader: () => '',
        createReadStream: () => {
          const raw = open();
          const stream = Buffer.isBuffer(raw) ? Readable.from([raw], { objectMode: false }) : raw;
          streams.push(stream);
          // Aborted before DATA: the relay gets an error for its body, never an end of data.
          if (signal.aborted) stream.destroy(abortError(signal));
          return stream;
        },
      },
    };
    return new Promise((resolve, reject) => {
      // On abort (the policy's timeout, say) the attempt ends now. A body still being sent is cut
      // off, so the relay never sees its end of data and keeps nothing; a relay that already has
      // the whole body may still accept it, which the late callback logs (a possible duplicate).
      const onAbort = (): void => {
        for (const stream of streams) stream.destroy(abortError(signal));
        reject(abortError(signal));
      };
      // The default policy's shared signal never fires: listening on it would only pile up one
      // listener per concurrent send (and Node's MaxListenersExceededWarning past ten).
      const listens = signal !== NEVER_ABORTED;
      if (listens) signal.addEventListener('abort', onAbort, { once: true });
      transporter.send(mail, (error, info) => {
        if (listens) signal.removeEventListener('abort', onAbort);
        this.#trimPools();
        if (signal.aborted) {
          if (error === null || error === undefined)
            this.#logger.warn(
              { relay: hop.key },
              'relay accepted a message after its attempt was abandoned; it may arrive twice',
            );
          return;
        }
        if (error !== null && error !== undefined) reject(error);
        else resolve(info ?? {});
      });
    });
  }

  #pool(hop: Hop): Mailer {
    let pool = this.#pools.get(hop.key);
    // Map order is recency: a pool in use moves to the end, the first ones are closed first.
    if (pool !== undefined) this.#pools.delete(hop.key);
    else pool = nodemailer.createTransport(hop.options);
    this.#pools.set(hop.key, pool);
    this.#trimPools();
    return pool;
  }

  /** Closes the least recently used pools past {@link MAX_POOLS} that have nothing in flight. */
  #trimPools(): void {
    let excess = this.#pools.size - MAX_POOLS;
    if (excess <= 0) return;
    for (const [key, pool] of this.#pools) {
      if (excess <= 0) break;
      const pending = (pool.transporter as { pendingCount?: () => number }).pendingCount?.() ?? 1;
      if (pending > 0) continue;
      pool.close();
      this.#pools.delete(key);
      excess -= 1;
    }
  }
}
