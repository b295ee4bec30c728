// audit_log: who changed what (plans, statuses, bans, relays …). Written in the same transaction as the change,
// so there is no change without its row and no row without its change.
import type { Knex } from 'knex';

export interface AuditEntry {
  readonly table: string;
  readonly operation: 'INSERT' | 'UPDATE' | 'DELETE';
  /** The user the change concerns, when it concerns one. */
  readonly userId?: string | null | undefined;
  readonly oldValues?: Record<string, unknown> | null | undefined;
  readonly newValues?: Record<string, unknown> | null | undefined;
  /** Who made the change: an admin pubkey, 'user' (the user themself), or a system name ('payments'). */
  readonly actor: string;
}

export interface AuditRecord {
  readonly id: string;
  readonly table: string;
  readonly operation: string;
  readonly oldValues: unknown;
  readonly newValues: unknown;
  readonly actor: string | null;
  readonly createdAt: string;
}

export async function writeAudit(db: Knex, e: AuditEntry): Promise<void> {
  await db('audit_log').insert({
    table_name: e.table,
    operation: e.operation,
    user_id: e.userId ?? null,
    old_values: e.oldValues ? JSON.stringify(e.oldValues) : null,
    new_values: e.newValues ? JSON.stringify(e.newValues) : null,
    actor: e.actor,
  });
}

interface AuditRow {
  id: string;
  table_name: string;
  operation: string;
  old_values: unknown;
  new_values: unknown;
  actor: string | null;
  created_at: Date | string;
}

/** The query of every audit row about one user, oldest first (rows to be read with toAuditRecord). */
export function auditRowsForUser(db: Knex, userId: string): Knex.QueryBuilder {
  return db('audit_log')
    .where({ user_id: userId })
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .select('id', 'table_name', 'operation', 'old_values', 'new_values', 'actor', 'created_at');
}

export function toAuditRecord(row: Record<string, unknown>): AuditRecord {
  const r = row as unknown as AuditRow;
  return {
    id: r.id,
    table: r.table_name,
    operation: r.operation,
    oldValues: r.old_values,
    newValues: r.new_values,
    actor: r.actor,
    createdAt: r.created_at instanceof Date ? r.created_at.toISOString() : String(r.created_at),
  };
}

export interface AuditFilter {
  readonly actor?: string | undefined;
  readonly table?: string | undefined;
  readonly userId?: string | undefined;
  /** Rows after this one in the order (the last row of the previous page). */
  readonly after?: string | undefined;
  readonly limit: number;
}

export interface AuditLogEntry extends AuditRecord {
  readonly userId: string | null;
}

/** The audit trail for the operator's console, newest first, filtered by actor, table and user. */
export async function listAudit(db: Knex, f: AuditFilter): Promise<AuditLogEntry[]> {
  const q = db('audit_log')
    .select('id', 'table_name', 'operation', 'old_values', 'new_values', 'actor', 'user_id', 'created_at')
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(f.limit);
  if (f.actor) q.where('actor', f.actor);
  if (f.table) q.where('table_name', f.table);
  if (f.userId) q.where('user_id', f.userId);
  // By the row's own (created_at, id), read in SQL: an ISO string would round created_at's microseconds.
  if (f.after)
    q.whereRaw('(created_at, id) < (SELECT a.created_at, a.id FROM audit_log a WHERE a.id = ?::uuid)', [f.after]);
  const rows = (await q) as Record<string, unknown>[];
  return rows.map((row) => ({ ...toAuditRecord(row), userId: (row.user_id as string | null) ?? null }));
}

/** The tables the audit trail has rows about (for the console's filter). */
export async function auditedTables(db: Knex): Promise<string[]> {
  const rows = (await db('audit_log').distinct('table_name').orderBy('table_name')) as { table_name: string }[];
  return rows.map((r) => r.table_name);
}
