import { PerformanceObserver } from 'node:perf_hooks';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** A message received by a test relay. */
export interface Received {
  from: string;
  to: string[];
  data: Buffer;
}

/** A test relay: our own smtp-server instance that records what it receives. */
export interface TestRelay {
  port: number;
  messages: Received[];
  /** Connections open right now. */
  connections?(): number;
  close(): Promise<void>;
}

/** Starts a relay on 127.0.0.1:0. `behaviour` decides how it answers. */
export async function startRelay(
  behaviour: {
    /** A reply code, or a code with its text, refuses the recipient. */
    rcpt?: (address: string) => number | { code: number; message: string } | undefined;
    data?: () => number | undefined;
    delayMs?: number;
    /** Answers each RCPT after this long. */
    rcptDelayMs?: number;
    /** Reads nothing of a message body for this long (the sender meets TCP back-pressure). */
    stallDataMs?: number;
    /** Address to listen on. Default: 127.0.0.1. */
    host?: string;
    /** Port to listen on. Default: any free port. */
    port?: number;
  } = {},
): Promise<TestRelay> {
  const messages: Received[] = [];
  const fail = (code: number, message = `test relay says ${code}`): Error =>
    Object.assign(new Error(message), { responseCode: code });
  const server = new SMTPServer({
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    logger: false,
    disableReverseLookup: true,
    onRcptTo(address, _session, callback) {
      const code = behaviour.rcpt?.(address.address);
      const answer = (): void =>
        callback(
          code === undefined
            ? undefined
            : typeof code === 'number'
              ? fail(code)
              : fail(code.code, code.message),
        );
      if (behaviour.rcptDelayMs === undefined) answer();
      else setTimeout(answer, behaviour.rcptDelayMs);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      if (behaviour.stallDataMs !== undefined) {
        stream.pause();
        setTimeout(() => stream.resume(), behaviour.stallDataMs);
      }
      stream.on('end', () => {
        const finish = (): void => {
          const code = behaviour.data?.();
          if (code !== undefined) {
            callback(fail(code));
            return;
          }
          messages.push({
            from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            data: Buffer.concat(chunks),
          });
          callback();
        };
        if (behaviour.delayMs === undefined) finish();
        else setTimeout(finish, behaviour.delayMs);
      });
    },
  });
  // Peers that vanish (a SIGKILLed forwarder) reset their connections; that is expected here.
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(behaviour.port ?? 0, behaviour.host ?? '127.0.0.1', resolve);
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    messages,
    connections: () => (server as unknown as { connections: Set<unknown> }).connections.size,
    close: () =>
      new Promise<void>((resolve) => {
        (server.options as { closeTimeout?: number }).closeTimeout = 100;
        server.close(() => resolve());
      }),
  };
}

/** A relay that drops every connection before the greeting: unreachable, but it holds its port. */
export async function startDeadRelay(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A loopback port with nothing listening on it, from 11000-31999: below Linux's ephemeral range
 * (32768+), so no outgoing connection of a test running in parallel takes it before a server
 * started on it (smtp-sink, postsrsd) binds it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 11_000 + Math.floor(Math.random() * 21_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port found');
}

/**
 * A self-signed P-256 certificate for `commonName` (and `altNames`, DNS names), made with openssl
 * in `dir`, valid for a day: the PEM key and certificate.
 */
export async function selfSignedCertificate(
  dir: string,
  commonName: string,
  altNames: readonly string[] = [],
): Promise<{ key: string; cert: string }> {
  const key = join(dir, `${commonName}.key`);
  const cert = join(dir, `${commonName}.crt`);
  const made = await run('/usr/bin/openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${commonName}`,
    ...(altNames.length === 0
      ? []
      : ['-addext', `subjectAltName=${altNames.map((name) => `DNS:${name}`).join(',')}`]),
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  if (made.code !== 0) throw new Error(`openssl failed: ${made.stderr}`);
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

/** Runs a program and returns its exit code and output. */
export function run(
  file: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A raw SMTP client: writes exact bytes and collects replies. */
export class RawClient {
  #buffer = '';
  #waiters: ((line: string) => void)[] = [];
  readonly #socket;

  private constructor(port: number) {
    this.#socket = connect(port, '127.0.0.1');
    this.#socket.setEncoding('latin1');
    this.#socket.on('data', (data: string) => {
      this.#buffer += data;
      this.#drain();
    });
    this.#socket.on('error', () => undefined);
    this.#socket.on('close', () => {
      for (const waiter of this.#waiters.splice(0)) waiter('closed');
    });
  }

  /** The first reply (220, or 421 when the connection was refused). */
  greeting = '';

  static async open(port: number): Promise<RawClient> {
    const client = new RawClient(port);
    client.greeting = await client.reply();
    return client;
  }

  /** Opens a session and starts one transaction (EHLO, MAIL, RCPT, DATA): the message comes next. */
  static async atData(
    port: number,
    from = 'a@origin.test',
    to = 'alice@fwd.test',
  ): Promise<RawClient> {
    const client = await RawClient.open(port);
    await client.send('EHLO x.test\r\n');
    await client.send(`MAIL FROM:<${from}>\r\n`);
    await client.send(`RCPT TO:<${to}>\r\n`);
    await client.send('DATA\r\n');
    return client;
  }

  #drain(): void {
    for (;;) {
      const match = /^(\d{3}) .*\r\n/m.exec(this.#buffer);
      if (match === null || this.#waiters.length === 0) return;
      const end = match.index + match[0].length;
      const reply = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end);
      this.#waiters.shift()!(reply.trim());
    }
  }

  /** Waits for the next complete reply. */
  reply(): Promise<string> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#drain();
    });
  }

  /** Sends bytes and waits for one reply. */
  async send(bytes: string): Promise<string> {
    this.#socket.write(Buffer.from(bytes, 'latin1'));
    return this.reply();
  }

  /** Sends bytes without waiting. */
  write(bytes: string | Buffer): void {
    this.#socket.write(bytes);
  }

  close(): void {
    this.#socket.destroy();
  }
}

/**
 * Collections V8 reports while `work` runs. Any kind counts: V8 turns a requested young collection
 * into a full one when incremental marking is under way (seen on Node 24 under load), and a full
 * collection sweeps the young generation too.
 */
export async function collectionsDuring(work: () => unknown): Promise<number> {
  let count = 0;
  const observer = new PerformanceObserver((list) => {
    count += list.getEntries().length;
  });
  observer.observe({ entryTypes: ['gc'] });
  await work();
  // GC entries are delivered asynchronously: wait until 200 ms pass with none (at most 2 s).
  for (let last = -1, waited = 0; count !== last && waited < 2000; waited += 200) {
    last = count;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  observer.disconnect();
  return count;
}
