// The audit trail as the operator's console reads it: newest first, filtered by who made the change (an admin
// pubkey, 'user', or a system name), the table changed, and the user concerned; a page at a time.
import type { Knex } from 'knex';
import { auditedTables, listAudit, type AuditFilter, type AuditLogEntry } from '../../store/audit.js';

export type { AuditLogEntry };

export interface AuditTrail {
  list(filter: AuditFilter): Promise<AuditLogEntry[]>;
  tables(): Promise<string[]>;
}

export function createAuditTrail(db: Knex): AuditTrail {
  return { list: (filter) => listAudit(db, filter), tables: () => auditedTables(db) };
}
