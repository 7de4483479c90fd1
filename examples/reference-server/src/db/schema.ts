import type { ColumnType, Generated } from 'kysely';

/** Epoch milliseconds stored as `bigint` (parsed back to a number by the pool's type parser). */
type EpochMs = ColumnType<number, number, number>;

export interface UsersTable {
  id: string;
  email: string;
  password_hash: string;
  email_verified: boolean;
  created_at: EpochMs;
}

export interface DomainsTable {
  id: string;
  /** Null for the service's own shared domain. */
  user_id: string | null;
  name: string;
  verification_token: string;
  dkim_selector: string;
  dkim_private_key: string;
  dkim_public_key: string;
  verified_at: EpochMs | null;
  created_at: EpochMs;
}

export interface AliasesTable {
  id: string;
  user_id: string;
  domain_id: string;
  local_part: string;
  address: string;
  enabled: boolean;
  destinations: string[];
  forwarded_count: Generated<number>;
  rejected_count: Generated<number>;
  last_seen_at: EpochMs | null;
  created_at: EpochMs;
}

export interface DestinationsTable {
  id: string;
  user_id: string;
  /** Lower-cased. */
  address: string;
  /** When the mailbox confirmed it; null while unverified. */
  verified_at: EpochMs | null;
  /**
   * Set by migration 0004 on addresses aliases forwarded to before 0003: still forwarded to, not
   * usable for new aliases; cleared when verified. Unverified and not grandfathered: not forwarded to.
   */
  grandfathered_at: EpochMs | null;
  /** SHA-256 (hex) of the pending verification token; null once spent. Never the token itself. */
  token_hash: string | null;
  token_expires_at: EpochMs | null;
  created_at: EpochMs;
}

export interface ForwardingLogTable {
  id: Generated<number>;
  alias_id: string;
  user_id: string;
  outcome: string;
  reason: string | null;
  message_id: string | null;
  created_at: EpochMs;
}

export interface AuditLogTable {
  id: Generated<number>;
  user_id: string | null;
  action: string;
  request_id: string | null;
  detail: ColumnType<Record<string, unknown>, string, string>;
  created_at: EpochMs;
}

/** Every table the reference server keeps in PostgreSQL. */
export interface Database {
  users: UsersTable;
  domains: DomainsTable;
  aliases: AliasesTable;
  destinations: DestinationsTable;
  forwarding_log: ForwardingLogTable;
  audit_log: AuditLogTable;
}
