import { randomBytes } from 'node:crypto';
import { resolveTxt } from 'node:dns/promises';
import { createReadStream, mkdirSync } from 'node:fs';
import { open as openFile, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { maskEmail, parseAddress } from './address.js';
import {
  CLAIM_TEMP_SUFFIX,
  claimSpool,
  claimSpoolWaiting,
  exists,
  isClaimDebris,
} from './claim.js';
import type { Claim } from './claim.js';
import { SmtpForwardError } from './errors.js';
import { Emitter } from './events.js';
import type { Event } from './events.js';
import {
  encodeDisplayName,
  headerBytes,
  fieldValue,
  makeField,
  parseHeaders,
  parseMailbox,
  serialiseHeaders,
} from './headers.js';
import type { HeaderField } from './headers.js';
import { Intake } from './intake.js';
import { dropOldMarks, markSettled, wasSettled } from './settled.js';
import type { Spool } from './intake.js';
import { ByteCollector } from './memory.js';
import { buildDsn } from './dsn.js';
import type {
  Clock,
  DeliveryQueue,
  DnsResolver,
  Logger,
  Policy,
  QueuedDelivery,
  RateLimiter,
} from './ports.js';
import type { AttemptInfo } from './queue.js';
import { passThroughPolicy, silentLogger, systemClock, unlimitedRateLimiter } from './ports.js';
import { isDisabledAction } from './resolver.js';
import type { ResolvedRecipient, Resolver } from './resolver.js';
import {
  arcSeal,
  chooseDkimKey,
  dkimSignature,
  isDkimSelection,
  relaxedBodyHash,
  verifyInbound,
} from './signing.js';
import type {
  ArcOptions,
  AuthenticationOptions,
  DkimKey,
  DkimSigning,
  InboundVerdict,
} from './signing.js';
import { Srs } from './srs.js';
import type { SrsOptions } from './srs.js';
import { Transport } from './transport.js';
import type { DeliveryResult, TransportOptions } from './transport.js';

/** Limits enforced while mail streams in. */
export interface Limits {
  /**
   * Largest message accepted, in bytes, counted as relayed (bare LFs made CRLF). Nothing past the
   * limit is stored: the rest is drained, then answered 552. Default: 26_214_400 (25 MiB).
   */
  maxMessageBytes?: number;
  /** Largest header block, in bytes. Default: 262_144. */
  maxHeaderBytes?: number;
  /** Recipients per message; more get 452. Default: 50. */
  maxRecipients?: number;
  /** Messages (MAIL commands) per connection; more get 421. Default: 100. */
  maxMessagesPerSession?: number;
  /**
   * Commands of any kind per connection (NOOP, RSET, HELO, unknown ones...); the next one gets
   * 421 and the connection is closed, so one client cannot keep a slot busy forever. Default:
   * room for `maxMessagesPerSession` messages to `maxRecipients` each, `maxMessagesPerSession ×
   * (maxRecipients + 4)`, at least 2_000 (5_400 with the other defaults).
   */
  maxCommandsPerSession?: number;
  /** Open connections in total; more get 421. Default: 500. */
  maxConnections?: number;
  /** Open connections per client IP; more get 421. Default: 20. */
  maxConnectionsPerIp?: number;
  /** Idle time allowed between commands, in ms. Default: 300_000. */
  idleTimeoutMs?: number;
  /** Time allowed for one DATA transfer, in ms; then 421 and the connection is closed. Default: 600_000. */
  dataTimeoutMs?: number;
  /** A message with this many Received headers or more is treated as a loop (554 5.4.6). Default: 30. */
  maxHops?: number;
  /** Bytes of a message kept in memory before the body spills to a file. Default: 1_048_576. */
  memoryBytes?: number;
}

/** Queued delivery: 250 only after the message is fsync'd to `spoolDir` and handed to `queue`. */
export interface QueuedDeliveryOptions {
  mode: 'queued';
  /** Receives each spooled message; see {@link DeliveryQueue}. */
  queue: DeliveryQueue;
  /** Directory for durable spool files (created if missing). */
  spoolDir: string;
}

/** `sync`: relay while the sender waits. `queued`: spool, then answer. */
export type DeliveryMode = 'sync' | QueuedDeliveryOptions;

/** When to rewrite `From` to the alias so DMARC passes. */
export type FromRewrite = 'never' | 'dmarc-strict' | 'always';

/** STARTTLS certificate and key, PEM. */
export interface TlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
}

/** Options of {@link SmtpForwarder}. */
export interface SmtpForwarderOptions {
  /** The forwarding domain: SRS addresses, DKIM `d=`, rewritten `From`, EHLO name. */
  domain: string;
  /** Looks up aliases; null means unknown (550 5.1.1 at RCPT). */
  resolver: Resolver;
  /** How mail leaves. Default: direct MX delivery. */
  transport?: TransportOptions;
  /** `sync` (default) or queued. */
  delivery?: DeliveryMode;
  /** SRS secrets; without them MAIL FROM is kept as is (SPF will usually fail downstream). */
  srs?: Omit<SrsOptions, 'domain' | 'clock'> & { domain?: string };
  /** DKIM key of the forwarding domain, or a choice of key per alias domain. Default: no signature. */
  dkim?: DkimSigning;
  /** ARC key; adds an ARC set to every forward. Needs `authentication`. Default: no ARC. */
  arc?: ArcOptions;
  /** Inbound SPF/DKIM/DMARC checks, recorded in Authentication-Results. Default: off. */
  authentication?: AuthenticationOptions;
  /** DNS for DMARC policy lookups when `authentication` is off. Default: the system resolver. */
  dnsResolver?: DnsResolver;
  /** Default: `dmarc-strict`. */
  fromRewrite?: FromRewrite;
  /** Size, count and time limits. */
  limits?: Limits;
  /** Per-IP (`ip:<address>`, at connect) and per-sender (`sender:<address>`, at MAIL) limits. Default: unlimited. */
  rateLimiter?: RateLimiter;
  /** Wraps each outbound attempt (timeouts, circuit breakers). Default: run once. */
  policy?: Policy;
  /** Enables STARTTLS with this certificate. Default: STARTTLS not offered. */
  tls?: TlsOptions;
  /** Default: silent. */
  logger?: Logger;
  /** Default: the system clock. */
  clock?: Clock;
  /** Host name in the banner and Received lines. Default: `domain`. */
  hostname?: string;
  /**
   * Bytes of message data (all sessions together) after which the forwarder runs a young-generation
   * garbage collection, so the socket buffers of a large message are freed as it streams instead of
   * piling up until V8 collects on its own (up to 32 MiB on Node 20, about 48 MiB on Node 24).
   * Uses `globalThis.gc` under `--expose-gc`, else exposes V8's collector once for itself. `false`
   * leaves collection to V8. At least 65_536. Default: 4_194_304 (4 MiB).
   */
  collectGarbageEveryBytes?: number | false;
}

/** Options of {@link SmtpForwarder.listen}. */
export interface ListenOptions {
  /** Port; 0 picks a free one. Default: 25. */
  port?: number;
  /** Interface. Default: '0.0.0.0'. */
  host?: string;
}

/** The address a forwarder is bound to. */
export interface BoundAddress {
  host: string;
  port: number;
}

/** A message was accepted (250). */
export interface AcceptedEvent {
  messageId: string;
  sessionId: string;
  /** Masked envelope sender. */
  sender: string;
  /** Masked aliases. */
  recipients: string[];
  bytes: number;
}

/** A command or message was refused. */
export interface RejectedEvent {
  sessionId: string;
  messageId?: string;
  stage: 'connect' | 'command' | 'mail' | 'rcpt' | 'data';
  responseCode: number;
  reason: string;
  /** Masked address involved, if any. */
  address?: string;
}

/** Delivery outcome for a message. */
export interface DeliveryEvent {
  messageId: string;
  /** Masked destinations concerned. */
  recipients: string[];
  reason: string;
  responseCode?: number;
}

/** A session ended. */
export interface SessionClosedEvent {
  /** The id the session's other events carried. */
  sessionId: string;
}

/** Counters since the forwarder was created. */
export interface ForwarderStats {
  connections: number;
  activeConnections: number;
  accepted: number;
  rejected: number;
  forwarded: number;
  deferred: number;
  bounced: number;
  discarded: number;
  /** Queued messages given up with no DSN (`dropQueued`): a null sender, or a DSN no relay took. */
  dropped: number;
  rateLimited: number;
  oversized: number;
  loops: number;
  normalisedLineEndings: number;
}

interface Accepted {
  alias: string;
  resolved: ResolvedRecipient;
}

interface SessionState {
  recipients: Accepted[];
  messages: number;
}

interface SmtpError extends Error {
  responseCode: number;
}

/** The parts of smtp-server's connection objects (`server.connections`) the forwarder uses. */
interface ServerConnection {
  id: string;
  send(code: number, text: string): void;
  close(): void;
  /** Called by the command parser for every command line (not for DATA content). */
  _onCommand?: (command: Buffer, callback: () => void) => void;
}

const DEFAULT_LIMITS: Required<Limits> = {
  maxMessageBytes: 26_214_400,
  maxHeaderBytes: 262_144,
  maxRecipients: 50,
  maxMessagesPerSession: 100,
  maxCommandsPerSession: 2_000,
  maxConnections: 500,
  maxConnectionsPerIp: 20,
  idleTimeoutMs: 300_000,
  dataTimeoutMs: 600_000,
  maxHops: 30,
  memoryBytes: 1_048_576,
};

const DEFAULT_COLLECT_EVERY_BYTES = 4_194_304;
// How long bounceQueued waits for another worker still sending the job, by default.
const BOUNCE_WAIT_MS = 300_000;
// A job's record of delivered destinations is written here first, then renamed into place.
const DELIVERED_TEMP_SUFFIX = '.tmp';

function smtpError(responseCode: number, message: string): SmtpError {
  const error = new Error(message) as SmtpError;
  error.responseCode = responseCode;
  return error;
}

// One randomBytes call per 455 ids instead of one per message (a native call each, visible in profiles).
let idPool = Buffer.alloc(0);
let idOffset = 0;
function newMessageId(): string {
  if (idOffset + 9 > idPool.length) {
    idPool = randomBytes(4095);
    idOffset = 0;
  }
  const id = idPool.toString('base64url', idOffset, idOffset + 9);
  idOffset += 9;
  return id;
}

// The date has one-second resolution: format it once per second, not once per message.
let lastDate = { second: Number.NaN, text: '' };

function rfc5322Date(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastDate.second)
    lastDate = { second, text: new Date(ms).toUTCString().replace('GMT', '+0000') };
  return lastDate.text;
}

const SP = 0x20;
const HTAB = 0x09;

/** Most ARC sets a chain may hold (RFC 8617 4.2.1). */
const MAX_ARC_SETS = 50;

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\u0000-\u007f]/;

/**
 * RFC 6531: a local part may hold non-ASCII characters only in a transaction that announced
 * SMTPUTF8 on MAIL FROM. The domain is not checked: smtp-server turns an A-label
 * (`xn--mnchen-3ya.de`, plain ASCII on the wire) into Unicode before we see it.
 */
function asciiOrAnnounced(address: string, mailFrom: SMTPServerAddress | undefined): boolean {
  if (!NON_ASCII.test(address.slice(0, address.lastIndexOf('@') + 1))) return true;
  const args: unknown = mailFrom?.args;
  return (
    typeof args === 'object' &&
    args !== null &&
    (args as Record<string, unknown>)['SMTPUTF8'] === true
  );
}

function printable(text: string): string {
  return text.replace(/[^\x21-\x7e]/g, '').slice(0, 255);
}

async function lookupDmarcPolicy(domain: string, resolver: DnsResolver): Promise<string> {
  const labels = domain.split('.');
  const candidates = [domain];
  if (labels.length > 2) candidates.push(labels.slice(-2).join('.'));
  for (const candidate of candidates) {
    try {
      const records = (await resolver(`_dmarc.${candidate}`, 'TXT')) as string[][];
      for (const record of records) {
        const text = record.join('');
        if (!/^v=DMARC1/i.test(text)) continue;
        const policy = /(?:^|;)\s*p\s*=\s*(\w+)/i.exec(text);
        if (policy !== null) return policy[1]!.toLowerCase();
      }
    } catch {
      /* no record here: try the organisational domain */
    }
  }
  return '';
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const systemDns: DnsResolver = (name, rrtype) =>
  rrtype === 'TXT' ? resolveTxt(name) : Promise.reject(new Error(`unsupported rrtype ${rrtype}`));

/**
 * An SMTP alias forwarder: accepts mail only for aliases the resolver knows, and relays it to
 * their destinations with SRS, DKIM, ARC and DMARC-safe From rewriting.
 */
export class SmtpForwarder {
  readonly #options: SmtpForwarderOptions;
  readonly #limits: Required<Limits>;
  readonly #domain: string;
  readonly #hostname: string;
  // os.tmpdir() reads TMPDIR through six privilege syscalls on every call: read it once.
  readonly #spillDir = tmpdir();
  readonly #collector: ByteCollector;
  #commandLimitWarned = false;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #rateLimiter: RateLimiter;
  readonly #srs: Srs | undefined;
  readonly #transport: Transport;
  readonly #server: SMTPServer;
  readonly #sessions = new Map<string, SessionState>();
  readonly #perIp = new Map<string, number>();
  #listening = false;
  readonly #stats: ForwarderStats = {
    connections: 0,
    activeConnections: 0,
    accepted: 0,
    rejected: 0,
    forwarded: 0,
    deferred: 0,
    bounced: 0,
    discarded: 0,
    dropped: 0,
    rateLimited: 0,
    oversized: 0,
    loops: 0,
    normalisedLineEndings: 0,
  };
  readonly #accepted = new Emitter<AcceptedEvent>();
  readonly #rejected = new Emitter<RejectedEvent>();
  readonly #forwarded = new Emitter<DeliveryEvent>();
  readonly #deferred = new Emitter<DeliveryEvent>();
  readonly #bounced = new Emitter<DeliveryEvent>();
  readonly #discarded = new Emitter<DeliveryEvent>();
  readonly #dropped = new Emitter<DeliveryEvent>();
  readonly #sessionClosed = new Emitter<SessionClosedEvent>();

  /** A message was accepted with 250. */
  readonly onAccepted: Event<AcceptedEvent> = this.#accepted.event;
  /** A connection, sender, recipient or message was refused. */
  readonly onRejected: Event<RejectedEvent> = this.#rejected.event;
  /** Every destination of a message accepted it. */
  readonly onForwarded: Event<DeliveryEvent> = this.#forwarded.event;
  /** Delivery failed temporarily (the sender was told 451, or the queue will retry). */
  readonly onDeferred: Event<DeliveryEvent> = this.#deferred.event;
  /** Delivery failed permanently (the sender was told 550, or a DSN was sent). */
  readonly onBounced: Event<DeliveryEvent> = this.#bounced.event;
  /** Mail for a disabled alias set to `discard` was accepted and dropped. */
  readonly onDiscarded: Event<DeliveryEvent> = this.#discarded.event;
  /** A queued message was given up with no DSN (`dropQueued`): nothing was delivered or bounced. */
  readonly onDropped: Event<DeliveryEvent> = this.#dropped.event;
  /** A session ended (the client quit or went away, or it was closed): drop what you keyed on its id. */
  readonly onSessionClosed: Event<SessionClosedEvent> = this.#sessionClosed.event;

  constructor(options: SmtpForwarderOptions) {
    const domain = options.domain.toLowerCase();
    if (parseAddress(`postmaster@${domain}`) === null) {
      throw new SmtpForwardError('INVALID_OPTIONS', 'domain must be a valid domain name');
    }
    if (typeof options.resolver !== 'function') {
      throw new SmtpForwardError('INVALID_OPTIONS', 'resolver must be a function');
    }
    if (options.arc !== undefined && options.authentication === undefined) {
      throw new SmtpForwardError(
        'INVALID_OPTIONS',
        'arc needs authentication (the ARC set records its results)',
      );
    }
    if (
      options.dkim !== undefined &&
      isDkimSelection(options.dkim) &&
      options.dkim.keys === undefined &&
      options.dkim.select === undefined &&
      options.dkim.fallback === undefined
    ) {
      throw new SmtpForwardError(
        'INVALID_OPTIONS',
        'dkim needs privateKey, or one of keys, select and fallback',
      );
    }
    this.#options = { ...options };
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    if (options.limits?.maxCommandsPerSession === undefined) {
      // A session that uses its whole message and recipient allowance must not hit this one.
      limits.maxCommandsPerSession = Math.max(
        DEFAULT_LIMITS.maxCommandsPerSession,
        limits.maxMessagesPerSession * (limits.maxRecipients + 4),
      );
    }
    this.#limits = limits;
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!Number.isFinite(value) || value <= 0) {
        throw new SmtpForwardError('INVALID_OPTIONS', `limits.${name} must be a positive number`);
      }
    }
    const every = options.collectGarbageEveryBytes ?? DEFAULT_COLLECT_EVERY_BYTES;
    // Below one socket read (64 KiB) it would collect on every chunk and stall every session.
    if (every !== false && (!Number.isFinite(every) || every < 65_536)) {
      throw new SmtpForwardError(
        'INVALID_OPTIONS',
        'collectGarbageEveryBytes must be a number of at least 65_536, or false',
      );
    }
    this.#collector = new ByteCollector(every);
    this.#domain = domain;
    this.#hostname = options.hostname ?? domain;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'smtp-forward' });
    this.#clock = options.clock ?? systemClock;
    this.#rateLimiter = options.rateLimiter ?? unlimitedRateLimiter;
    if (options.srs !== undefined) {
      this.#srs = new Srs({
        ...options.srs,
        domain: options.srs.domain ?? domain,
        clock: this.#clock,
      });
    }
    this.#transport = new Transport(
      options.transport ?? { mx: {} },
      options.policy ?? passThroughPolicy,
      this.#logger,
      this.#hostname,
    );
    const delivery = options.delivery ?? 'sync';
    if (delivery !== 'sync') mkdirSync(delivery.spoolDir, { recursive: true, mode: 0o700 });
    this.#server = this.#createServer();
  }

  /** Counters since creation. */
  stats(): ForwarderStats {
    return { ...this.#stats, activeConnections: this.#server.connections.size };
  }

  /** Starts accepting connections; resolves with the bound address, rejects with `BIND_FAILED`. */
  listen(options: ListenOptions = {}): Promise<BoundAddress> {
    if (this.#listening)
      return Promise.reject(
        new SmtpForwardError('ALREADY_LISTENING', 'listen() was already called'),
      );
    const port = options.port ?? 25;
    const host = options.host ?? '0.0.0.0';
    return new Promise((resolve, reject) => {
      const net = this.#server.server;
      const onError = (error: Error): void => {
        net.off('listening', onListening);
        reject(
          new SmtpForwardError(
            'BIND_FAILED',
            `cannot listen on ${host}:${port}: ${(error as { code?: string }).code ?? error.message}`,
            { cause: error },
          ),
        );
      };
      const onListening = (): void => {
        net.off('error', onError);
        this.#listening = true;
        const address = net.address();
        if (address === null || typeof address === 'string') {
          resolve({ host, port });
        } else {
          resolve({ host: address.address, port: address.port });
        }
      };
      net.once('error', onError);
      net.once('listening', onListening);
      this.#server.listen(port, host);
    });
  }

  /**
   * Stops accepting connections, lets sessions in flight finish for up to `timeoutMs`
   * (new commands get 421), then answers the rest 421 and closes them. Closes relay pools.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise((resolve) => {
      const finish = (): void => {
        this.#transport.close();
        this.#listening = false;
        resolve();
      };
      if (!this.#listening) {
        finish();
        return;
      }
      // smtp-server reads closeTimeout at close time; the options object is ours, not the caller's.
      (this.#server.options as { closeTimeout?: number }).closeTimeout = timeoutMs;
      this.#server.close(finish);
    });
  }

  /** Replaces the STARTTLS certificate without a restart. */
  reloadTls(tls: TlsOptions): void {
    this.#server.updateSecureContext({ key: tls.key, cert: tls.cert });
  }

  /** Reverses an SRS address of our domain; throws `SRS_FORGED`/`SRS_EXPIRED`/`SRS_INVALID`. */
  reverseSrs(address: string): string {
    if (this.#srs === undefined) throw new SmtpForwardError('SRS_INVALID', 'SRS is not configured');
    return this.#srs.reverse(address);
  }

  #createServer(): SMTPServer {
    const tls = this.#options.tls;
    const server = new SMTPServer({
      name: this.#hostname,
      banner: 'Postern forwarder',
      size: this.#limits.maxMessageBytes,
      disabledCommands: tls === undefined ? ['AUTH', 'STARTTLS'] : ['AUTH'],
      ...(tls === undefined ? {} : { key: tls.key, cert: tls.cert }),
      authOptional: true,
      disableReverseLookup: true,
      // Without TCP_NODELAY each reply waits on the client's delayed ACK (~40 ms per command round trip).
      noDelay: true,
      logger: false,
      maxClients: this.#limits.maxConnections,
      socketTimeout: this.#limits.idleTimeoutMs,
      closeTimeout: 30_000,
      onConnect: (session, callback) => {
        this.#onConnect(session).then(
          () => callback(),
          (error: unknown) => callback(this.#asReply(error, 421, session.id)),
        );
      },
      onMailFrom: (address, session, callback) => {
        this.#onMailFrom(address, session).then(
          () => callback(),
          (error: unknown) => callback(this.#asReply(error, 451, session.id)),
        );
      },
      onRcptTo: (address, session, callback) => {
        this.#onRcptTo(address, session).then(
          () => callback(),
          (error: unknown) => callback(this.#asReply(error, 451, session.id)),
        );
      },
      onData: (stream, session, callback) => {
        this.#onData(stream, session).then(
          (reply) => callback(null, reply),
          (error: unknown) => callback(this.#asReply(error, 451, session.id)),
        );
      },
      onClose: (session) => {
        this.#sessions.delete(session.id);
        const count = (this.#perIp.get(session.remoteAddress) ?? 1) - 1;
        if (count <= 0) this.#perIp.delete(session.remoteAddress);
        else this.#perIp.set(session.remoteAddress, count);
        this.#sessionClosed.emit({ sessionId: session.id });
      },
    });
    server.on('error', (error: Error) => {
      this.#logger.warn({ code: (error as { code?: string }).code }, 'smtp server error');
    });
    return server;
  }

  // An unexpected failure (a rate limiter or DNS that is down, a library error) becomes a generic
  // temporary reply: the sender retries, and no internal detail reaches the client.
  #asReply(error: unknown, responseCode: 421 | 451, sessionId: string): SmtpError {
    if (error instanceof Error && typeof (error as Partial<SmtpError>).responseCode === 'number')
      return error as SmtpError;
    this.#logger.error(
      { sessionId, error: error instanceof Error ? error.message : String(error) },
      'unexpected failure in SMTP session',
    );
    return smtpError(responseCode, '4.3.0 Temporary local problem, try again later');
  }

  #reject(event: RejectedEvent): SmtpError {
    this.#stats.rejected += 1;
    this.#rejected.emit(event);
    return smtpError(event.responseCode, event.reason);
  }

  async #onConnect(session: SMTPServerSession): Promise<void> {
    this.#stats.connections += 1;
    const ip = session.remoteAddress;
    const open = this.#perIp.get(ip) ?? 0;
    // Count before the limit check: onClose decrements for every session, refused or not.
    this.#perIp.set(ip, open + 1);
    if (open >= this.#limits.maxConnectionsPerIp) {
      throw this.#reject({
        sessionId: session.id,
        stage: 'connect',
        responseCode: 421,
        reason: '4.7.0 Too many connections from your address',
      });
    }
    const limit = await this.#rateLimiter.consume(`ip:${ip}`);
    if (!limit.allowed) {
      this.#stats.rateLimited += 1;
      const seconds = Math.ceil(limit.retryAfterMs / 1000);
      throw this.#reject({
        sessionId: session.id,
        stage: 'connect',
        responseCode: 421,
        reason: `4.7.0 Rate limit reached, try again in ${seconds}s`,
      });
    }
    // The client may have gone while the limiter answered: its session is closed (and forgotten)
    // already, and must not be stored again.
    const connection = this.#connection(session.id);
    if (connection === undefined) return;
    this.#sessions.set(session.id, { recipients: [], messages: 0 });
    this.#limitCommands(session.id, connection);
  }

  /** smtp-server's connection object of a session (a scan of open connections). */
  #connection(sessionId: string): ServerConnection | undefined {
    for (const connection of this.#server.connections as Set<ServerConnection>)
      if (connection.id === sessionId) return connection;
    return undefined;
  }

  /**
   * Counts every command line of the session. smtp-server has no hook per command, so the
   * connection's own command handler is wrapped; a test fails if an upgrade removes it.
   */
  #limitCommands(sessionId: string, connection: ServerConnection): void {
    const handle = connection._onCommand;
    if (typeof handle !== 'function') {
      if (!this.#commandLimitWarned) {
        this.#commandLimitWarned = true;
        this.#logger.warn(
          { sessionId },
          'this smtp-server version hides its command handler: maxCommandsPerSession is not enforced',
        );
      }
      return;
    }
    const max = this.#limits.maxCommandsPerSession;
    let count = 0;
    connection._onCommand = (command, callback) => {
      count += 1;
      if (count <= max) {
        handle.call(connection, command, callback);
        return;
      }
      const refusal = this.#reject({
        sessionId,
        stage: 'command',
        responseCode: 421,
        reason: '4.7.0 Too many commands in this session, closing connection',
      });
      // 421 closes the connection (smtp-server's send does it).
      connection.send(421, refusal.message);
    };
  }

  #state(session: SMTPServerSession): SessionState {
    let state = this.#sessions.get(session.id);
    if (state === undefined) {
      state = { recipients: [], messages: 0 };
      this.#sessions.set(session.id, state);
    }
    return state;
  }

  async #onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const state = this.#state(session);
    state.recipients = [];
    state.messages += 1;
    if (state.messages > this.#limits.maxMessagesPerSession) {
      throw this.#reject({
        sessionId: session.id,
        stage: 'mail',
        responseCode: 421,
        reason: '4.7.0 Too many messages in one session',
      });
    }
    const sender = address.address;
    if (!asciiOrAnnounced(sender, address)) {
      throw this.#reject({
        sessionId: session.id,
        stage: 'mail',
        responseCode: 553,
        reason: '5.6.7 Non-ASCII address without SMTPUTF8',
      });
    }
    if (sender !== '' && parseAddress(sender) === null) {
      throw this.#reject({
        sessionId: session.id,
        stage: 'mail',
        responseCode: 553,
        reason: '5.1.7 Bad sender address syntax',
      });
    }
    // The null sender (bounces, auto-replies) names no one: it is limited per client address,
    // so MAIL FROM:<> is no way around the per-sender limit.
    const limit = await this.#rateLimiter.consume(
      sender === '' ? `sender:<>@${session.remoteAddress}` : `sender:${sender.toLowerCase()}`,
    );
    if (!limit.allowed) {
      this.#stats.rateLimited += 1;
      const seconds = Math.ceil(limit.retryAfterMs / 1000);
      throw this.#reject({
        sessionId: session.id,
        stage: 'mail',
        responseCode: 450,
        reason: `4.7.1 Sender rate limit reached, try again in ${seconds}s`,
        address: sender === '' ? '<>' : maskEmail(sender),
      });
    }
  }

  async #onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const state = this.#state(session);
    const alias = address.address;
    const masked = maskEmail(alias);
    const parsed = parseAddress(alias);
    if (parsed === null) {
      throw this.#reject({
        sessionId: session.id,
        stage: 'rcpt',
        responseCode: 553,
        reason: '5.1.3 Bad recipient address syntax',
        address: masked,
      });
    }
    const mailFrom = session.envelope.mailFrom;
    if (!asciiOrAnnounced(alias, mailFrom === false ? undefined : mailFrom)) {
      throw this.#reject({
        sessionId: session.id,
        stage: 'rcpt',
        responseCode: 553,
        reason: '5.6.7 Non-ASCII address without SMTPUTF8',
        address: masked,
      });
    }
    if (state.recipients.length >= this.#limits.maxRecipients) {
      throw this.#reject({
        sessionId: session.id,
        stage: 'rcpt',
        responseCode: 452,
        reason: '4.5.3 Too many recipients',
        address: masked,
      });
    }
    let resolved: ResolvedRecipient | null;
    if (this.#srs !== undefined && Srs.isSrs(parsed.local)) {
      // Only bounces (and auto-replies, RFC 3834) come back to an SRS address, from the null
      // sender. Anyone else could send through an SRS address their own alias showed them, as
      // through an open relay to the sender it names.
      if (mailFrom !== false && mailFrom.address !== '') {
        throw this.#reject({
          sessionId: session.id,
          stage: 'rcpt',
          responseCode: 550,
          reason: '5.7.1 SRS addresses take bounces only (MAIL FROM:<>)',
          address: masked,
        });
      }
      try {
        resolved = { destinations: [this.#srs.reverse(alias)] };
      } catch (error) {
        const code = SmtpForwardError.isInstance(error) ? error.code : 'SRS_INVALID';
        throw this.#reject({
          sessionId: session.id,
          stage: 'rcpt',
          responseCode: 550,
          reason: `5.1.1 Invalid SRS address (${code})`,
          address: masked,
        });
      }
    } else {
      try {
        const sender = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        resolved = await this.#options.resolver(alias, {
          sender,
          remoteAddress: session.remoteAddress,
          sessionId: session.id,
        });
      } catch (error) {
        this.#logger.error(
          { sessionId: session.id, recipient: masked, error: (error as Error).message },
          'resolver failed',
        );
        throw this.#reject({
          sessionId: session.id,
          stage: 'rcpt',
          responseCode: 451,
          reason: '4.3.0 Temporary lookup failure',
          address: masked,
        });
      }
    }
    // Unknown recipients are refused here, never accepted and bounced later: no open relay, no backscatter.
    if (resolved === null) {
      throw this.#reject({
        sessionId: session.id,
        stage: 'rcpt',
        responseCode: 550,
        reason: '5.1.1 No such recipient here',
        address: masked,
      });
    }
    const reason = (resolved.reason ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 100);
    if (resolved.disabled === 'reject') {
      throw this.#reject({
        sessionId: session.id,
        stage: 'rcpt',
        responseCode: 550,
        reason: `5.2.1 Mailbox disabled${reason ? ` (${reason})` : ''}`,
        address: masked,
      });
    }
    if (resolved.disabled === 'defer' || resolved.disabled === 'defer-recipient') {
      // 421 ends the session (smtp-server closes it), so the sender retries the whole message;
      // 450 refuses this recipient only.
      throw this.#reject({
        sessionId: session.id,
        stage: 'rcpt',
        responseCode: resolved.disabled === 'defer' ? 421 : 450,
        reason: `4.2.1 Mailbox temporarily disabled${reason ? ` (${reason})` : ''}`,
        address: masked,
      });
    }
    const misconfigured = (problem: string): SmtpError => {
      this.#logger.error({ sessionId: session.id, recipient: masked }, problem);
      return this.#reject({
        sessionId: session.id,
        stage: 'rcpt',
        responseCode: 451,
        reason: '4.3.0 Alias misconfigured',
        address: masked,
      });
    };
    // A disabled alias with an action we do not know must never forward: refuse for now.
    if (resolved.disabled !== undefined && !isDisabledAction(resolved.disabled))
      throw misconfigured('resolver returned an unknown disabled action');
    if (
      resolved.disabled !== 'discard' &&
      (resolved.destinations.length === 0 ||
        !resolved.destinations.every((d) => parseAddress(d) !== null))
    )
      throw misconfigured('resolver returned no valid destination');
    state.recipients.push({ alias, resolved });
  }

  async #onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const messageId = newMessageId();
    const state = this.#state(session);
    const recipients = [...state.recipients];
    const sender = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
    const intake = new Intake({
      maxMessageBytes: this.#limits.maxMessageBytes,
      maxHeaderBytes: this.#limits.maxHeaderBytes,
      memoryBytes: this.#limits.memoryBytes,
      spoolDir: this.#spillDir,
      onBytes: (bytes) => this.#collector.add(bytes),
    });
    const dataTimer = setTimeout(() => {
      // A DATA transfer that never ends would hold a spool and a slot forever.
      const connection = this.#connection(session.id);
      connection?.send(421, '4.4.2 DATA timeout, closing connection');
      connection?.close();
      stream.destroy();
    }, this.#limits.dataTimeoutMs);
    dataTimer.unref();
    const reject = (responseCode: number, reason: string): SmtpError =>
      this.#reject({ sessionId: session.id, messageId, stage: 'data', responseCode, reason });
    try {
      try {
        await drainInto(stream, intake);
      } catch {
        throw reject(451, '4.3.0 Transfer interrupted');
      }
      // The limit is on the transfer; relaying has its own timeouts.
      clearTimeout(dataTimer);
      this.#stats.normalisedLineEndings += intake.normalised;
      if (intake.problem === 'size' || stream.sizeExceeded) {
        this.#stats.oversized += 1;
        throw reject(552, `5.3.4 Message exceeds the ${this.#limits.maxMessageBytes} byte limit`);
      }
      if (intake.problem === 'headers') {
        this.#stats.oversized += 1;
        throw reject(552, '5.3.4 Header section too large');
      }
      if (intake.problem === 'spool') throw reject(451, '4.3.0 Temporary local problem, try again');
      // A header section that starts with a folded line would continue the last field we write
      // above it (our Authentication-Results, say) with the sender's text.
      if (intake.header[0] === SP || intake.header[0] === HTAB)
        throw reject(550, '5.6.0 Header section starts with a folded line');
      const fields = parseHeaders(intake.header);
      const received = fields.filter((f) => f.key === 'received').length;
      const deliveredTo = new Set(
        fields.filter((f) => f.key === 'delivered-to').map((f) => fieldValue(f).toLowerCase()),
      );
      if (
        received >= this.#limits.maxHops ||
        recipients.some((r) => deliveredTo.has(r.alias.toLowerCase()))
      ) {
        this.#stats.loops += 1;
        throw reject(554, '5.4.6 Mail loop detected');
      }
      const live: Accepted[] = [];
      const discarded: Accepted[] = [];
      const unique = new Set<string>();
      for (const recipient of recipients) {
        if (recipient.resolved.disabled === 'discard') discarded.push(recipient);
        else {
          live.push(recipient);
          for (const destination of recipient.resolved.destinations) unique.add(destination);
        }
      }
      if (discarded.length > 0) {
        this.#stats.discarded += discarded.length;
        this.#discarded.emit({
          messageId,
          recipients: discarded.map((r) => maskEmail(r.alias)),
          reason: 'alias disabled (discard)',
        });
      }
      const destinations = [...unique];
      if (destinations.length === 0) {
        this.#acceptedEvent(messageId, session, sender, recipients, intake.bytes);
        return `2.0.0 Ok ${messageId}`;
      }
      const header = await this.#rewrite(fields, intake.spool, session, sender, live, messageId);
      const mailFrom =
        sender === '' || this.#srs === undefined ? sender : this.#srs.forward(sender);
      // Small messages go out as one Buffer (cheaper than a stream); spilled ones stream from disk.
      const inMemory = intake.spool.buffer();
      const whole = inMemory === undefined ? undefined : Buffer.concat([header, inMemory]);
      const open = (): Readable | Buffer => whole ?? concatStreams(header, intake.spool);
      if (this.#options.delivery !== undefined && this.#options.delivery !== 'sync') {
        await this.#enqueue(
          this.#options.delivery,
          {
            messageId,
            path: '',
            mailFrom,
            originalSender: sender,
            recipients: destinations,
            aliases: live.map((r) => r.alias),
            queuedAt: this.#clock.now(),
          },
          open,
        ).catch((error: unknown) => {
          this.#logger.error({ messageId, error: (error as Error).message }, 'spooling failed');
          throw reject(451, '4.3.0 Temporary local problem, try again');
        });
        this.#acceptedEvent(messageId, session, sender, recipients, intake.bytes);
        return `2.0.0 Queued as ${messageId}`;
      }
      const result = await this.#transport.deliver(mailFrom, destinations, open);
      return this.#syncReply(result, messageId, session, sender, recipients, intake.bytes, reject);
    } finally {
      clearTimeout(dataTimer);
      await intake.spool.dispose();
    }
  }

  #syncReply(
    result: DeliveryResult,
    messageId: string,
    session: SMTPServerSession,
    sender: string,
    recipients: Accepted[],
    bytes: number,
    reject: (responseCode: number, reason: string) => SmtpError,
  ): string {
    const failed = result.results.filter((r) => !r.ok);
    if (failed.length === 0) {
      this.#stats.forwarded += 1;
      // The payload (masked addresses) is built only when someone listens.
      if (this.#forwarded.active)
        this.#forwarded.emit({
          messageId,
          recipients: result.results.map((r) => maskEmail(r.recipient)),
          reason: 'delivered',
        });
      this.#acceptedEvent(messageId, session, sender, recipients, bytes);
      return `2.0.0 Ok ${messageId}`;
    }
    const temporary = failed.some((r) => r.temporary === true);
    const first = failed.find((r) => r.temporary === temporary) ?? failed[0]!;
    const event: DeliveryEvent = {
      messageId,
      recipients: failed.map((r) => maskEmail(r.recipient)),
      reason: first.response ?? 'delivery failed',
      ...(first.responseCode === undefined ? {} : { responseCode: first.responseCode }),
    };
    if (temporary) {
      this.#stats.deferred += 1;
      this.#deferred.emit(event);
      throw reject(451, `4.4.0 Forwarding failed temporarily, try again later (${messageId})`);
    }
    this.#stats.bounced += 1;
    this.#bounced.emit(event);
    throw reject(550, `5.0.0 Forwarding refused by the destination (${messageId})`);
  }

  #acceptedEvent(
    messageId: string,
    session: SMTPServerSession,
    sender: string,
    recipients: Accepted[],
    bytes: number,
  ): void {
    this.#stats.accepted += 1;
    if (!this.#accepted.active) return;
    this.#accepted.emit({
      messageId,
      sessionId: session.id,
      sender: maskEmail(sender),
      recipients: recipients.map((r) => maskEmail(r.alias)),
      bytes,
    });
  }

  async #rewrite(
    fields: HeaderField[],
    spool: Spool,
    session: SMTPServerSession,
    sender: string,
    recipients: Accepted[],
    messageId: string,
  ): Promise<Buffer> {
    const now = this.#clock.now();
    const helo = printable(session.hostNameAppearsAs || session.clientHostname || 'unknown');
    let verdict: InboundVerdict | undefined;
    const authentication = this.#options.authentication;
    if (authentication !== undefined) {
      try {
        verdict = await withTimeout(
          verifyInbound(
            wholeOrStream(serialiseHeaders(fields), spool),
            { ip: session.remoteAddress, helo, sender, mta: this.#hostname },
            authentication,
          ),
          authentication.timeoutMs ?? 15_000,
        );
      } catch (error) {
        this.#logger.warn(
          { messageId, error: (error as Error).message },
          'inbound authentication failed',
        );
        throw this.#reject({
          sessionId: session.id,
          messageId,
          stage: 'data',
          responseCode: 451,
          reason: '4.4.3 Temporary authentication lookup failure',
        });
      }
      if (
        authentication.rejectDmarcFailures === true &&
        verdict.dmarc === 'fail' &&
        verdict.dmarcPolicy === 'reject'
      ) {
        throw this.#reject({
          sessionId: session.id,
          messageId,
          stage: 'data',
          responseCode: 550,
          reason: '5.7.1 DMARC policy of the sender domain rejects this message',
        });
      }
    }
    const forFirst =
      recipients.length === 1 ? `\r\n\tfor <${headerBytes(recipients[0]!.alias)}>` : '';
    // Our own folded Received line; every part of it is checked or generated here.
    const out: HeaderField[] = [
      {
        key: 'received',
        raw: `Received: from ${helo} ([${session.remoteAddress}])\r\n\tby ${this.#hostname} (Postern) with ${printable(session.transmissionType)} id ${messageId}${forFirst};\r\n\t${rfc5322Date(now)}\r\n`,
      },
    ];
    if (recipients.length === 1) out.push(makeField('Delivered-To', recipients[0]!.alias));
    if (verdict !== undefined) out.push(makeField('Authentication-Results', verdict.authResults));
    // The key first: a rewritten From must be at the domain it signs for (DMARC alignment).
    const dkimKey = await this.#dkimKeyFor(recipients, messageId, session.id);
    const rewritten = await this.#maybeRewriteFrom(
      fields,
      recipients,
      verdict,
      (dkimKey?.domain ?? this.#domain).toLowerCase(),
    );
    out.push(...rewritten);
    const header = serialiseHeaders(out);
    const arc = this.#options.arc;
    // RFC 8617 allows 50 ARC sets: a chain that already has them is not extended.
    const sealed =
      arc !== undefined &&
      verdict !== undefined &&
      verdict.arcSealable &&
      verdict.arcInstance < MAX_ARC_SETS
        ? { arc, verdict }
        : undefined;
    if (sealed === undefined && dkimKey === null) return header;
    // DKIM and the ARC message signature share one relaxed body hash: one pass over the body.
    const bodyHash = await relaxedBodyHash(spool.buffer() ?? spool.read());
    // Parsed once: the DKIM signature and the ARC set sign the same fields.
    const signedFields = parseHeaders(header);
    // The DKIM signature covers none of the ARC fields, so both are signed at once on the
    // thread pool: the seal and the signature do not wait for each other.
    const [seal, signature] = await Promise.all([
      sealed === undefined
        ? undefined
        : arcSeal(
            signedFields,
            bodyHash,
            { ...sealed.arc, domain: sealed.arc.domain ?? this.#domain },
            {
              authResults: sealed.verdict.authResults,
              // A chain that did not validate is sealed as failed, and no one extends it after us.
              cv:
                sealed.verdict.arc === 'pass'
                  ? 'pass'
                  : sealed.verdict.arc === 'none'
                    ? 'none'
                    : 'fail',
              instance: sealed.verdict.arcInstance + 1,
            },
            new Date(now),
          ),
      dkimKey === null
        ? undefined
        : dkimSignature(signedFields, bodyHash, dkimKey, new Date(now)).catch((error: unknown) => {
            throw this.#signingFailed(error, messageId, session.id);
          }),
    ]);
    const parts = [header];
    if (seal !== undefined) parts.unshift(seal);
    if (signature !== undefined) parts.unshift(Buffer.from(signature, 'latin1'));
    return Buffer.concat(parts);
  }

  /** The DKIM key for one message, or null to leave it unsigned; a lookup failure answers 451. */
  async #dkimKeyFor(
    recipients: Accepted[],
    messageId: string,
    sessionId: string,
  ): Promise<DkimKey | null> {
    const dkim = this.#options.dkim;
    if (dkim === undefined) return null;
    const aliases = recipients.map((r) => r.alias.toLowerCase());
    const first = aliases[0] ?? '';
    try {
      return await chooseDkimKey(
        dkim,
        { domain: first.slice(first.lastIndexOf('@') + 1), aliases, messageId },
        this.#domain,
      );
    } catch (error) {
      throw this.#signingFailed(error, messageId, sessionId);
    }
  }

  #signingFailed(error: unknown, messageId: string, sessionId: string): SmtpError {
    this.#logger.error({ messageId, error: (error as Error).message }, 'DKIM signing failed');
    return this.#reject({
      sessionId,
      messageId,
      stage: 'data',
      responseCode: 451,
      reason: '4.3.0 Temporary signing problem',
    });
  }

  /**
   * Rewrites From to an alias at `signingDomain` (the domain of the DKIM key, so the new From is
   * aligned) when the sender's DMARC policy asks for it, or always with `fromRewrite: 'always'`.
   */
  async #maybeRewriteFrom(
    given: HeaderField[],
    recipients: Accepted[],
    verdict: InboundVerdict | undefined,
    signingDomain: string,
  ): Promise<HeaderField[]> {
    const mode = this.#options.fromRewrite ?? 'dmarc-strict';
    if (mode === 'never') return given;
    // Receivers must see one From (RFC 5322 allows one): any other is kept as X-Original-From,
    // whether or not the first is rewritten.
    const fields = oneFrom(given);
    const fromField = fields.find((f) => f.key === 'from');
    if (fromField === undefined) return fields;
    const original = fieldValue(fromField);
    const mailbox = parseMailbox(original);
    if (mailbox === null) return fields;
    const fromDomain = mailbox.address.slice(mailbox.address.lastIndexOf('@') + 1).toLowerCase();
    const alias =
      recipients.find((r) => parseAddress(r.alias)?.domain === signingDomain)?.alias ??
      `postmaster@${signingDomain}`;
    if (fromDomain === signingDomain) return fields;
    if (mode === 'dmarc-strict') {
      // A DMARC lookup that hangs must not hold the sender: after the timeout, treat it as no policy.
      const policy =
        verdict?.dmarcPolicy ||
        (await withTimeout(
          lookupDmarcPolicy(
            fromDomain,
            this.#options.authentication?.dnsResolver ?? this.#options.dnsResolver ?? systemDns,
          ),
          10_000,
        ).catch(() => ''));
      if (policy !== 'reject' && policy !== 'quarantine') return fields;
    }
    const name = `${mailbox.name || mailbox.address} via ${alias.slice(0, alias.lastIndexOf('@'))}`;
    const result: HeaderField[] = [];
    for (const field of fields) {
      if (field.key !== 'from') {
        result.push(field);
        continue;
      }
      result.push(makeField('From', `${encodeDisplayName(name)} <${alias}>`));
      // Keep the original From where replies and humans can find it.
      result.push(renamed(field, 'X-Original-From'));
      if (!fields.some((f) => f.key === 'reply-to')) result.push(renamed(field, 'Reply-To'));
    }
    return result;
  }

  async #enqueue(
    delivery: QueuedDeliveryOptions,
    partialJob: QueuedDelivery,
    open: () => Readable | Buffer,
  ): Promise<void> {
    const path = join(delivery.spoolDir, `${partialJob.messageId}.eml`);
    const job: QueuedDelivery = { ...partialJob, path };
    const message = open();
    await writeDurably(
      `${path}.part`,
      Buffer.isBuffer(message) ? Readable.from([message]) : message,
    );
    await writeDurably(`${path}.json.part`, Readable.from([Buffer.from(JSON.stringify(job))]));
    // The message file is renamed first and the job file last: a job file always has its message.
    await rename(`${path}.part`, path);
    await rename(`${path}.json.part`, `${path}.json`);
    const dir = await openFile(delivery.spoolDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    try {
      await delivery.queue.add(job);
    } catch (error) {
      // The sender gets 451 and will retry: the spooled copy must not be delivered as well.
      await Promise.all([rm(path, { force: true }), rm(`${path}.json`, { force: true })]);
      throw error;
    }
  }

  /**
   * Jobs spooled but not yet delivered: add them to the queue again at start-up, so none is lost
   * when the queue lost its jobs (a Redis restart without persistence) or a process crashed. A
   * job the queue still holds is harmless to add again: a copy that runs after the job was settled
   * finds it settled (for `SETTLED_DAYS`, 7 days) and resolves without sending. Delivery is at
   * least once: a message may be sent twice if a crash came right after a relay accepted it.
   * Also clears what crashes leave behind (partial files, stale claims, old settled marks).
   */
  async pendingSpool(): Promise<QueuedDelivery[]> {
    const delivery = this.#options.delivery;
    if (delivery === undefined || delivery === 'sync') return [];
    const jobs: QueuedDelivery[] = [];
    await dropOldMarks(delivery.spoolDir);
    const names = await readdir(delivery.spoolDir);
    const present = new Set(names);
    const now = Date.now();
    for (const name of names) {
      const path = join(delivery.spoolDir, name);
      if (
        name.endsWith('.part') ||
        name.endsWith(`.delivered${DELIVERED_TEMP_SUFFIX}`) ||
        (name.endsWith('.eml') && !present.has(`${name}.json`)) ||
        (name.endsWith('.eml.delivered') && !present.has(name.slice(0, -'.delivered'.length)))
      ) {
        // Never acknowledged with 250, a delivery record cut off by a crash, or what a crash left
        // of a settled job: safe to drop once old. Another process sharing the folder may be
        // writing a fresh one right now (this runs at every start), so fresh ones stay.
        if (await olderThan(path, STALE_FILE_MS, now)) await rm(path, { force: true });
        continue;
      }
      if (name.endsWith('.claim') || name.endsWith(CLAIM_TEMP_SUFFIX)) {
        if (isClaimDebris(name, present)) await rm(path, { force: true });
        continue;
      }
      if (!name.endsWith('.eml.json')) continue;
      try {
        jobs.push(
          JSON.parse(await readFile(join(delivery.spoolDir, name), 'utf8')) as QueuedDelivery,
        );
      } catch (error) {
        this.#logger.error({ file: name, error: (error as Error).message }, 'unreadable spool job');
      }
    }
    return jobs;
  }

  /**
   * Delivers one spooled job (call it from your queue's worker). Resolves when done (delivered or
   * bounced); rejects with a temporary `DELIVERY_FAILED` error when the queue should retry.
   * Destinations that already accepted are remembered and never sent twice by a retry. The job is
   * claimed first (a `.claim` file beside the spool): while another worker, in any process sharing
   * the spool directory, is still sending it, this rejects with a temporary `DELIVERY_FAILED`.
   * When the spool file is gone it sends nothing and rejects with `SPOOL_UNREADABLE`.
   */
  async deliverQueued(
    job: QueuedDelivery,
    info: AttemptInfo = { attempt: 1, finalAttempt: false },
  ): Promise<void> {
    const claim = await claimSpool(job.path).catch((error: unknown) => {
      throw new SmtpForwardError('DELIVERY_FAILED', `could not claim ${job.messageId}`, {
        temporary: true,
        attempts: info.attempt,
        cause: error,
      });
    });
    if (claim === undefined) {
      // Another worker is sending it (the queue lost a lease and handed the job out again).
      throw new SmtpForwardError(
        'DELIVERY_FAILED',
        `${job.messageId} is being delivered by another worker`,
        { temporary: true, attempts: info.attempt },
      );
    }
    try {
      // Settled by a worker that held it before (the queue handed it out again after a lease ran
      // out, or pendingSpool added it again), perhaps cut off before its files went: done.
      if (await wasSettled(job.path)) {
        await removeSpool(job).catch(() => undefined);
        return;
      }
      if (!(await exists(job.path))) {
        // Gone and never settled: lost, and this says so. What is left of it goes, or else waits
        // for pendingSpool.
        await removeSpool(job).catch(() => undefined);
        throw new SmtpForwardError(
          'SPOOL_UNREADABLE',
          `spool of ${job.messageId} is gone and was never settled`,
          { attempts: info.attempt },
        );
      }
      await this.#deliverClaimed(job, info).catch((error: unknown) => {
        throw typed(error, job, info.attempt);
      });
    } finally {
      await this.#release(claim, job);
    }
  }

  /**
   * Marks a job settled (delivered or bounced), then deletes its files. The mark is best effort:
   * failing to write it (a full disk) must not fail a job whose mail already went out, which the
   * queue would then send again; without it, a later copy of the job reads as lost instead.
   */
  async #settle(job: QueuedDelivery): Promise<void> {
    await markSettled(job.path).catch((error: unknown) => {
      this.#logger.warn(
        { messageId: job.messageId, error: (error as Error).message },
        'settled mark could not be written',
      );
    });
    await removeSpool(job);
  }

  /** Releases a claim; a failure to remove the file leaves a stale claim, which is taken over. */
  async #release(claim: Claim, job: QueuedDelivery): Promise<void> {
    await claim.release().catch((error: unknown) => {
      this.#logger.warn(
        { messageId: job.messageId, error: (error as Error).message },
        'claim could not be released',
      );
    });
  }

  async #deliverClaimed(job: QueuedDelivery, info: AttemptInfo): Promise<void> {
    const donePath = `${job.path}.delivered`;
    const done = new Set<string>(await readDelivered(donePath, job.messageId));
    const remaining = job.recipients.filter((r) => !done.has(r));
    const result =
      remaining.length === 0
        ? { results: [], attempts: 0 }
        : await this.#transport.deliver(job.mailFrom, remaining, () => createReadStream(job.path));
    for (const entry of result.results) if (entry.ok) done.add(entry.recipient);
    const failed = result.results.filter((r) => !r.ok);
    const retry = failed.filter((r) => r.temporary === true && !info.finalAttempt);
    const bounce = failed.filter((r) => !retry.includes(r));
    const delivered = result.results.filter((r) => r.ok);
    if (delivered.length > 0) {
      this.#stats.forwarded += 1;
      this.#forwarded.emit({
        messageId: job.messageId,
        recipients: delivered.map((r) => maskEmail(r.recipient)),
        reason: 'delivered',
      });
    }
    if (bounce.length > 0) {
      if (job.originalSender !== '') {
        const sent = await this.#sendDsn(
          job,
          await readHeaderBlock(job.path),
          bounce.map((r) => r.response ?? 'delivery failed'),
          bounce.some((r) => r.temporary === true),
        );
        const refused = sent.find((r) => !r.ok);
        if (refused !== undefined) {
          // The sender must hear of it: the spool stays, the refused destinations stay undone (the
          // next attempt bounces them again), and the queue retries, or gives up to bounceQueued.
          await writeDelivered(donePath, done);
          throw new SmtpForwardError(
            'DELIVERY_FAILED',
            `no relay took the DSN of ${job.messageId}: ${refused.response ?? 'delivery failed'}`,
            {
              temporary: refused.temporary === true,
              attempts: info.attempt,
              ...(refused.responseCode === undefined ? {} : { responseCode: refused.responseCode }),
            },
          );
        }
      }
      for (const entry of bounce) done.add(entry.recipient);
      this.#stats.bounced += 1;
      const first = bounce[0]!;
      this.#bounced.emit({
        messageId: job.messageId,
        recipients: bounce.map((r) => maskEmail(r.recipient)),
        reason: first.response ?? 'delivery failed',
        ...(first.responseCode === undefined ? {} : { responseCode: first.responseCode }),
      });
    }
    if (retry.length > 0) {
      await writeDelivered(donePath, done);
      this.#stats.deferred += 1;
      const first = retry[0]!;
      this.#deferred.emit({
        messageId: job.messageId,
        recipients: retry.map((r) => maskEmail(r.recipient)),
        reason: first.response ?? 'delivery failed',
        ...(first.responseCode === undefined ? {} : { responseCode: first.responseCode }),
      });
      throw new SmtpForwardError('DELIVERY_FAILED', `delivery of ${job.messageId} deferred`, {
        temporary: true,
        attempts: info.attempt,
        ...(first.responseCode === undefined ? {} : { responseCode: first.responseCode }),
      });
    }
    await this.#settle(job);
  }

  /**
   * Gives up on a spooled job that your queue dead-lettered without `deliverQueued` bouncing it
   * (the job's lease lost on its last attempt, an error thrown on its last attempt): sends the
   * original sender a DSN (status 4.4.7, naming the aliases, `reason` redacted, DKIM-signed like
   * every DSN), counts it as bounced and removes the spool. Resolves `true` once a relay took the
   * DSN, `false` for a job with a null sender (a bounce is never bounced; the spool stays for
   * `dropQueued`). Rejects with `SPOOL_UNREADABLE` when the spool file cannot be read, and with
   * `DELIVERY_FAILED` when no relay took the DSN (temporary or not, as the relay answered; the
   * spool stays, for another try or for `dropQueued`).
   * While another worker is still sending the job (its lease was lost, not its work), this waits
   * for it, up to `waitMs` (default 300_000; then a temporary `DELIVERY_FAILED`): if that worker
   * settled the job, it rejects with `ALREADY_SETTLED` and sends nothing, so mail that was
   * delivered is never bounced.
   */
  async bounceQueued(
    job: QueuedDelivery,
    reason: string,
    options: { waitMs?: number } = {},
  ): Promise<boolean> {
    return this.#whenClaimed(job, options.waitMs, (waited) =>
      this.#bounceClaimed(job, reason, waited),
    );
  }

  /**
   * Gives up on a spooled job without sending anything, when not even a DSN can go out: its
   * sender is null (a bounce is never bounced, and `bounceQueued` resolved `false`), or its DSN
   * was refused for good or could not be sent for as long as you retry bounces (Postfix's
   * `bounce_queue_lifetime`). Marks the job settled and removes its files, so `pendingSpool`
   * never returns it again; `reason` goes to the error log and the `dropped` event, and
   * `stats().dropped` counts it. Resolves `true` when it removed the message, `false` when there
   * was nothing to remove: settled before (by a worker it waited for, as `bounceQueued` waits) or
   * its spool already gone.
   */
  async dropQueued(
    job: QueuedDelivery,
    reason: string,
    options: { waitMs?: number } = {},
  ): Promise<boolean> {
    return this.#whenClaimed(job, options.waitMs, async () => {
      if (await wasSettled(job.path)) {
        await removeSpool(job).catch(() => undefined);
        return false;
      }
      const present = await exists(job.path);
      await this.#settle(job);
      if (!present) return false;
      this.#stats.dropped += 1;
      this.#logger.error(
        { messageId: job.messageId, reason: reason.slice(0, 300) },
        'queued message dropped: it could be neither delivered nor bounced',
      );
      this.#dropped.emit({
        messageId: job.messageId,
        recipients: job.recipients.map(maskEmail),
        reason,
      });
      return true;
    });
  }

  /**
   * Runs `work` holding the job's claim, waiting up to `waitMs` (default 300_000) for another
   * worker still sending it; local failures become temporary `DELIVERY_FAILED` errors.
   */
  async #whenClaimed<T>(
    job: QueuedDelivery,
    waitMs: number = BOUNCE_WAIT_MS,
    work: (waited: boolean) => Promise<T>,
  ): Promise<T> {
    if (!Number.isFinite(waitMs) || waitMs < 0) {
      throw new SmtpForwardError(
        'INVALID_OPTIONS',
        `waitMs must be a finite number of ms >= 0, got ${String(waitMs)}`,
      );
    }
    const claimed = await claimSpoolWaiting(job.path, waitMs).catch((error: unknown) => {
      throw new SmtpForwardError('DELIVERY_FAILED', `could not claim ${job.messageId}`, {
        temporary: true,
        cause: error,
      });
    });
    if (claimed === undefined) {
      throw new SmtpForwardError(
        'DELIVERY_FAILED',
        `${job.messageId} is still being delivered by another worker after ${waitMs} ms`,
        { temporary: true },
      );
    }
    try {
      return await work(claimed.waited).catch((error: unknown) => {
        throw typed(error, job, undefined);
      });
    } finally {
      await this.#release(claimed.claim, job);
    }
  }

  async #bounceClaimed(job: QueuedDelivery, reason: string, waited: boolean): Promise<boolean> {
    if (await wasSettled(job.path)) {
      await removeSpool(job).catch(() => undefined);
      throw new SmtpForwardError('ALREADY_SETTLED', `${job.messageId} was settled before`);
    }
    let headers: Buffer;
    try {
      headers = await readHeaderBlock(job.path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'ENOENT' && waited) {
        // The worker we waited for delivered it, or bounced it itself: nothing is left to do.
        throw new SmtpForwardError(
          'ALREADY_SETTLED',
          `${job.messageId} was settled by the worker that held it`,
          { cause: error },
        );
      }
      throw new SmtpForwardError(
        'SPOOL_UNREADABLE',
        `spool of ${job.messageId} unreadable (${code})`,
        { cause: error },
      );
    }
    if (job.originalSender === '') return false;
    const results = await this.#sendDsn(job, headers, [reason], true);
    const failed = results.find((r) => !r.ok);
    if (failed !== undefined) {
      throw new SmtpForwardError(
        'DELIVERY_FAILED',
        `no relay took the DSN of ${job.messageId}: ${failed.response ?? 'delivery failed'}`,
        {
          temporary: failed.temporary === true,
          ...(failed.responseCode === undefined ? {} : { responseCode: failed.responseCode }),
        },
      );
    }
    this.#stats.bounced += 1;
    this.#bounced.emit({
      messageId: job.messageId,
      recipients: job.recipients.map(maskEmail),
      reason,
    });
    await this.#settle(job);
    return true;
  }

  /** Builds, signs and sends the DSN of a job to its original sender; resolves with the relay's verdict. */
  async #sendDsn(
    job: QueuedDelivery,
    headers: Buffer,
    diagnostics: string[],
    gaveUp: boolean,
  ): Promise<DeliveryResult['results']> {
    const dsn = buildDsn({
      domain: this.#domain,
      hostname: this.#hostname,
      to: job.originalSender,
      failed: job.aliases.map((alias, index) => ({
        recipient: alias,
        status: gaveUp ? '4.4.7' : '5.0.0',
        diagnostic: diagnostics[index] ?? diagnostics[0] ?? 'delivery failed',
      })),
      originalHeaders: headers,
      now: new Date(this.#clock.now()),
    });
    const signed = await this.#signDsn(dsn, job).catch((error: unknown) => {
      // An unsigned bounce is better than none.
      this.#logger.warn(
        { messageId: job.messageId, error: (error as Error).message },
        'DSN could not be DKIM-signed',
      );
      return dsn;
    });
    const result = await this.#transport.deliver('', [job.originalSender], () =>
      Readable.from([signed]),
    );
    return result.results;
  }

  /** Signs a DSN (From: MAILER-DAEMON@domain) with the forwarding domain's key, so DMARC aligns. */
  async #signDsn(dsn: Buffer, job: QueuedDelivery): Promise<Buffer> {
    const dkim = this.#options.dkim;
    if (dkim === undefined) return dsn;
    const key = await chooseDkimKey(
      dkim,
      { domain: this.#domain, aliases: job.aliases, messageId: job.messageId },
      this.#domain,
    );
    if (key === null) return dsn;
    const end = dsn.indexOf('\r\n\r\n');
    const header = dsn.subarray(0, end + 2);
    const bodyHash = await relaxedBodyHash(dsn.subarray(end + 4));
    return Buffer.concat([
      Buffer.from(
        await dkimSignature(parseHeaders(header), bodyHash, key, new Date(this.#clock.now())),
        'latin1',
      ),
      dsn,
    ]);
  }
}

// stream/promises pipeline() builds and aborts an AbortController per call (a DOMException each
// time), which shows in profiles at thousands of messages per second; plain pipe() is enough here.
function drainInto(source: Readable, target: Intake): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      source.unpipe(target);
      reject(error);
    };
    source.once('error', fail);
    source.once('close', () => {
      if (!source.readableEnded) fail(new Error('data stream closed early'));
    });
    target.once('error', fail);
    target.once('finish', resolve);
    source.pipe(target);
  });
}

async function writeDurably(path: string, source: Readable): Promise<void> {
  const handle = await openFile(path, 'wx', 0o600);
  try {
    for await (const chunk of source) await handle.write(chunk as Buffer);
    // 250 promises durability: the bytes must reach the disk first.
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Age from which pendingSpool takes a temporary or orphaned spool file for debris: an hour. */
const STALE_FILE_MS = 3_600_000;

/** True when the file at `path` was last written more than `ms` before `now` (false when gone). */
async function olderThan(path: string, ms: number, now: number): Promise<boolean> {
  return stat(path).then(
    (info) => now - info.mtimeMs > ms,
    () => false,
  );
}

/** The same field under another name, its value byte for byte. */
function renamed(field: HeaderField, name: string): HeaderField {
  return { key: name.toLowerCase(), raw: `${name}:${field.raw.slice(field.raw.indexOf(':') + 1)}` };
}

/** The fields with every From after the first turned into an X-Original-From (the same array when there is one). */
function oneFrom(fields: HeaderField[]): HeaderField[] {
  let seen = false;
  let changed = false;
  const result = fields.map((field) => {
    if (field.key !== 'from') return field;
    if (!seen) {
      seen = true;
      return field;
    }
    changed = true;
    return renamed(field, 'X-Original-From');
  });
  return changed ? result : fields;
}

/**
 * Deletes a job's job file first (so a crash midway never has `pendingSpool` queue it again), then
 * its spool file and its record of delivered destinations.
 */
async function removeSpool(job: QueuedDelivery): Promise<void> {
  await rm(`${job.path}.json`, { force: true });
  await Promise.all(
    [job.path, `${job.path}.delivered`, `${job.path}.delivered${DELIVERED_TEMP_SUFFIX}`].map(
      (path) => rm(path, { force: true }),
    ),
  );
}

/** A file-system failure (no space, no permission) as a temporary `DELIVERY_FAILED`; typed errors pass. */
function typed(error: unknown, job: QueuedDelivery, attempts: number | undefined): unknown {
  if (SmtpForwardError.isInstance(error)) return error;
  return new SmtpForwardError(
    'DELIVERY_FAILED',
    `${job.messageId} failed locally: ${(error as Error).message}`,
    { temporary: true, cause: error, ...(attempts === undefined ? {} : { attempts }) },
  );
}

/** Records the destinations a job has settled, whole or not at all (a crash mid-write leaves the old record). */
async function writeDelivered(path: string, done: ReadonlySet<string>): Promise<void> {
  const temporary = `${path}${DELIVERED_TEMP_SUFFIX}`;
  await writeFile(temporary, JSON.stringify([...done]), { mode: 0o600 });
  await rename(temporary, path);
}

/** The destinations a job already delivered to, from its `.delivered` record (none yet: []). */
async function readDelivered(path: string, messageId: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((entry) => typeof entry === 'string')) {
    // Sending again to every destination could duplicate; an operator (or the dead-letter bounce) decides.
    throw new SmtpForwardError(
      'SPOOL_UNREADABLE',
      `the delivery record of ${messageId} is damaged`,
    );
  }
  return parsed;
}

async function readHeaderBlock(path: string): Promise<Buffer> {
  const handle = await openFile(path, 'r');
  try {
    const buffer = Buffer.alloc(65_536);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const head = buffer.subarray(0, bytesRead);
    const end = head.indexOf('\r\n\r\n');
    return end < 0 ? head : head.subarray(0, end + 2);
  } finally {
    await handle.close();
  }
}

/** A stream of `head` followed by the spooled body. */
/** Header and body as one Buffer when the body is in memory, else as a stream. */
function wholeOrStream(head: Buffer, spool: Spool): Readable | Buffer {
  const body = spool.buffer();
  return body === undefined ? concatStreams(head, spool) : Buffer.concat([head, body]);
}

function concatStreams(head: Buffer, spool: Spool): Readable {
  const out = new PassThrough();
  out.write(head);
  const body = spool.read();
  body.on('error', (error) => out.destroy(error));
  out.on('close', () => body.destroy());
  body.pipe(out);
  return out;
}
