import { connect } from 'node:net';

/** One readiness check: resolves when the dependency is usable, rejects with why it is not. */
export type HealthCheck = (signal: AbortSignal) => Promise<void>;

/** Result of running the checks. */
export interface ReadinessReport {
  ok: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
}

/** Runs every check at once, each bounded by `timeoutMs`; never rejects. */
export async function runChecks(
  checks: Readonly<Record<string, HealthCheck>>,
  timeoutMs: number,
): Promise<ReadinessReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      });
      try {
        await Promise.race([check(controller.signal), timedOut]);
        return [name, { ok: true }] as const;
      } catch (error) {
        return [
          name,
          { ok: false, error: error instanceof Error ? error.message : String(error) },
        ] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const report: ReadinessReport['checks'] = {};
  for (const [name, result] of entries) report[name] = result;
  return { ok: entries.every(([, result]) => result.ok), checks: report };
}

/**
 * Checks that an SMTP server answers: reads the 220 greeting, sends EHLO, expects 250, says QUIT.
 * A port that accepts connections but does not speak SMTP fails.
 */
export function smtpEhloCheck(
  host: string,
  port: number,
  heloName = 'health.postern.invalid',
): HealthCheck {
  return (signal) =>
    new Promise<void>((resolve, reject) => {
      const socket = connect({ host, port });
      let buffer = '';
      let stage: 'greeting' | 'ehlo' = 'greeting';
      const fail = (error: Error): void => {
        socket.destroy();
        reject(error);
      };
      const onAbort = (): void => fail(new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      socket.setEncoding('utf8');
      socket.on('error', (error) => fail(error));
      socket.on('close', () => {
        signal.removeEventListener('abort', onAbort);
        reject(new Error('connection closed before EHLO was answered'));
      });
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        // A reply is complete at a line whose code is followed by a space (not a dash).
        const lines = buffer.split('\r\n').slice(0, -1);
        if (lines.some((line) => !/^\d{3}[ -]/.test(line)))
          return fail(new Error('the peer does not speak SMTP'));
        const last = lines.find((line) => /^\d{3} /.test(line));
        if (last === undefined) return;
        buffer = '';
        if (stage === 'greeting') {
          if (!last.startsWith('220')) return fail(new Error(`greeting was ${last.slice(0, 3)}`));
          stage = 'ehlo';
          socket.write(`EHLO ${heloName}\r\n`);
          return;
        }
        if (!last.startsWith('250')) return fail(new Error(`EHLO answered ${last.slice(0, 3)}`));
        signal.removeEventListener('abort', onAbort);
        socket.end('QUIT\r\n');
        resolve();
      });
    });
}
