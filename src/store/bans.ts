// relay_bans: NIP-86 relay management lists. kind 'pubkey' (banned pubkeys), 'event' (banned event ids) and
// 'allow' (explicitly allowed pubkeys). Every change writes its audit_log row in the same transaction.
import type { Knex } from 'knex';
import { writeAudit } from './audit.js';

export type BanKind = 'pubkey' | 'event' | 'allow';

export interface BanRecord {
  readonly kind: BanKind;
  readonly value: string;
  readonly reason: string | null;
  readonly createdBy: string | null;
  readonly createdAt: Date;
}

interface BanRow {
  kind: BanKind;
  value: string;
  reason: string | null;
  created_by: string | null;
  created_at: Date;
}

function toRecord(r: BanRow): BanRecord {
  return { kind: r.kind, value: r.value, reason: r.reason, createdBy: r.created_by, createdAt: r.created_at };
}

export async function listBans(db: Knex, kind?: BanKind): Promise<BanRecord[]> {
  const q = db('relay_bans')
    .select('*')
    .orderBy([{ column: 'created_at' }, { column: 'value' }]);
  if (kind) q.where({ kind });
  return ((await q) as BanRow[]).map(toRecord);
}

/** Adds (or re-reasons) an entry; audited. */
export async function putBan(
  db: Knex,
  kind: BanKind,
  value: string,
  reason: string | undefined,
  actor: string,
): Promise<void> {
  await db.transaction(async (trx) => {
    const old = (await trx('relay_bans').where({ kind, value }).first('*')) as BanRow | undefined;
    await trx('relay_bans')
      .insert({ kind, value, reason: reason ?? null, created_by: actor })
      .onConflict(['kind', 'value'])
      .merge({ reason: reason ?? null, created_by: actor });
    await writeAudit(trx, {
      table: 'relay_bans',
      operation: old ? 'UPDATE' : 'INSERT',
      oldValues: old ? { kind, value, reason: old.reason } : null,
      newValues: { kind, value, reason: reason ?? null },
      actor,
    });
  });
}

/** Removes an entry; audited when there was one. Returns whether there was. */
export async function deleteBan(db: Knex, kind: BanKind, value: string, actor: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const old = (await trx('relay_bans').where({ kind, value }).del().returning('*')) as BanRow[];
    const row = old[0];
    if (!row) return false;
    await writeAudit(trx, {
      table: 'relay_bans',
      operation: 'DELETE',
      oldValues: { kind, value, reason: row.reason },
      actor,
    });
    return true;
  });
}

/** Stops serving a banned event (it stays stored, so a re-publish is still recognised and refused). */
export async function removeBannedEvent(db: Knex, eventId: string): Promise<number> {
  return db('nostr_events')
    .where({ event_id: eventId })
    .whereNull('removed_at')
    .update({ removed_at: db.fn.now(), removed_reason: 'banned', updated_at: db.fn.now() });
}

/** Serves an event again that a ban had removed (regular events only: a replaceable one may have a newer version). */
export async function restoreBannedEvent(db: Knex, eventId: string): Promise<number> {
  return db('nostr_events')
    .where({ event_id: eventId, removed_reason: 'banned' })
    .whereNull('d_tag')
    .update({ removed_at: null, removed_reason: null, updated_at: db.fn.now() });
}
