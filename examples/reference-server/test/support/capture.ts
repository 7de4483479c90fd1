import { SMTPServer } from 'smtp-server';

/** A message the capture MX received. */
export interface Captured {
  from: string;
  to: string[];
  data: Buffer;
}

/** A local MX standing in for the destination's mail server: keeps every message it receives. */
export async function startCaptureServer(
  options: {
    /** Refuses RCPT TO for these addresses with this code (550: permanent, 450: temporary). */
    refuse?: { addresses: readonly string[]; code: number };
    /** Answers the end of each message's data after this long (a slow relay). */
    delayMs?: number;
  } = {},
): Promise<{
  port: number;
  messages: Captured[];
  /** Every RCPT TO address refused, once per refusal. */
  refused: string[];
  close(): Promise<void>;
}> {
  const messages: Captured[] = [];
  const refused: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const refuse = options.refuse;
      if (refuse !== undefined && refuse.addresses.includes(address.address)) {
        const status = refuse.code >= 500 ? '5.1.1' : '4.2.1';
        refused.push(address.address);
        callback(
          Object.assign(new Error(`${status} <${address.address}>: mailbox unavailable`), {
            responseCode: refuse.code,
          }),
        );
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        messages.push({
          from,
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          data: Buffer.concat(chunks),
        });
        if (options.delayMs === undefined) callback();
        else setTimeout(() => callback(), options.delayMs);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    messages,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        // Connections a client pool keeps open end after 100 ms, not smtp-server's default 30 s.
        (server.options as { closeTimeout?: number }).closeTimeout = 100;
        server.close(() => resolve());
      }),
  };
}

/** Resolves once `predicate` holds, checking every 50 ms; rejects after `timeoutMs`. */
export async function eventually<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
