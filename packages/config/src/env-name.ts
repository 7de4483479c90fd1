/**
 * The environment variable name for a shape key: `databaseUrl` → `DATABASE_URL`,
 * `smtpTLSPort` → `SMTP_TLS_PORT`; keys already in UPPER_SNAKE_CASE are kept as they are.
 */
export function toEnvName(key: string): string {
  if (/^[A-Z0-9_]+$/.test(key)) return key;
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toUpperCase();
}
