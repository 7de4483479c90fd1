import type { RateLimiter } from '../ports.js';

/**
 * The metric label of an SMTP reply or relay answer: its enhanced status code (`4.7.1`), else its
 * reply code (`450`), else `other`. Never the text: relay answers name destinations and queue ids,
 * and refusals carry a retry delay, each a new time series.
 */
export function reasonLabel(reason: string): string {
  const enhanced = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reason);
  if (enhanced !== null) return `${enhanced[1]}.${enhanced[2]}.${enhanced[3]}`;
  const code = /^\s*([245]\d\d)\b/.exec(reason);
  return code?.[1] ?? 'other';
}

/**
 * The one sender an envelope address stands for, for the per-sender limit: lower case, without a
 * `+tag`, and unwrapped from SRS (`SRS0=hash=tt=domain=local@forwarder`, `SRS1=…==hash=tt=domain=local@…`),
 * so `Me+1@x`, `me+2@x` and a forwarder's SRS address for `me@x` share one budget.
 */
export function senderRateKey(address: string): string {
  const lower = address.toLowerCase();
  const at = lower.lastIndexOf('@');
  if (at <= 0) return lower;
  let local = lower.slice(0, at);
  let domain = lower.slice(at + 1);
  let body: string | undefined;
  if (/^srs0[=+-]/.test(local)) body = local.slice(5);
  else if (/^srs1[=+-]/.test(local)) {
    const inner = local.indexOf('==');
    if (inner > 0) body = local.slice(inner + 2);
  }
  if (body !== undefined) {
    // hash = timestamp = original domain = original local part (which may hold `=`).
    const parts = body.split('=');
    if (parts.length >= 4 && parts[2] !== '' && parts.slice(3).join('=') !== '') {
      domain = parts[2] ?? domain;
      local = parts.slice(3).join('=');
    }
  }
  const cut = local.indexOf('+');
  if (cut > 0) local = local.slice(0, cut);
  return `${local}@${domain}`;
}

/** Wraps the SMTP limiter so the forwarder's `sender:<address>` keys name the sender as `senderRateKey` does. */
export function normalisedSmtpLimiter(limiter: RateLimiter): RateLimiter {
  return {
    consume: (key, options) =>
      limiter.consume(
        key.startsWith('sender:') ? `sender:${senderRateKey(key.slice(7))}` : key,
        options,
      ),
  };
}
