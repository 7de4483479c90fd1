import { randomBytes } from 'node:crypto';

/** One failed recipient in a delivery status notification. */
export interface FailedRecipient {
  /** The address the sender used (the alias), never the private destination. */
  recipient: string;
  status: string;
  diagnostic: string;
}

// Destination addresses are private to the alias owner; a bounce must not reveal them.
function redact(text: string): string {
  return text
    .replace(/[^\s<>"]+@[^\s<>"]+/g, '<redacted>')
    .replace(/[\r\n]+/g, ' ')
    .slice(0, 300);
}

/** Builds an RFC 3464 multipart/report bounce. */
export function buildDsn(options: {
  domain: string;
  hostname: string;
  to: string;
  failed: readonly FailedRecipient[];
  originalHeaders: Buffer;
  now: Date;
}): Buffer {
  const boundary = `postern-${randomBytes(8).toString('hex')}`;
  const date = options.now.toUTCString().replace('GMT', '+0000');
  const lines = [
    `From: Mail Delivery System <MAILER-DAEMON@${options.domain}>`,
    `To: <${options.to}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${date}`,
    `Message-ID: <${randomBytes(9).toString('base64url')}.dsn@${options.domain}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Your message could not be forwarded by ${options.hostname} to:`,
    ...options.failed.map((f) => `  <${f.recipient}>: ${redact(f.diagnostic)}`),
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns; ${options.hostname}`,
    `Arrival-Date: ${date}`,
    ...options.failed.flatMap((f) => [
      '',
      `Final-Recipient: rfc822; ${f.recipient}`,
      'Action: failed',
      `Status: ${f.status}`,
      `Diagnostic-Code: smtp; ${redact(f.diagnostic)}`,
    ]),
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
  ];
  return Buffer.concat([
    Buffer.from(lines.join('\r\n') + '\r\n'),
    options.originalHeaders,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}
