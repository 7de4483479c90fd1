import { spawn } from 'node:child_process';

/** Runs swaks against a local SMTP port; resolves with its exit code and transcript. */
export function swaks(
  port: number,
  from: string,
  to: string,
  body = 'Hello from the end-to-end test.',
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/usr/bin/swaks',
      [
        '--server',
        '127.0.0.1',
        '--port',
        String(port),
        '--from',
        from,
        '--to',
        to,
        '--helo',
        'client.test',
        '--header',
        'Subject: e2e',
        '--body',
        body,
        '--timeout',
        '20',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}
