// Many regular events stored in one transaction with a few multi-row statements (group commit): the bulk
// counterpart of saveEvent() in events.ts for the kinds that need no read-then-write (not replaceable, not
// addressable, not deletions).
import type { Knex } from 'knex';
import type { NostrEvent } from '../nips/nip01.js';
import { indexedTags, insertRow, type EventRowExtras } from './events.js';

export interface BatchItem {
  readonly ev: NostrEvent;
  readonly extras: EventRowExtras;
}

/** Ids among these events that a live kind-5 event by the same author names in an e tag. */
export async function deletedByAuthors(trx: Knex, events: readonly NostrEvent[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const rows = (await trx('nostr_event_tags as t')
    .join('nostr_events as d', 'd.id', 't.event_row_id')
    .where({ 't.name': 'e', 'd.event_kind': 5 })
    .whereIn('t.value', events.map((e) => e.id))
    .whereNull('d.removed_at')
    .select('t.value', 'd.pubkey')) as { value: string; pubkey: string }[];
  const authorOf = new Map(events.map((e) => [e.id, e.pubkey]));
  return new Set(rows.filter((r) => authorOf.get(r.value) === r.pubkey).map((r) => r.value));
}

/** Inserts the rows; returns event id → row id for those that were new (the others were already stored). */
export async function insertEvents(trx: Knex, items: readonly BatchItem[]): Promise<Map<string, string>> {
  if (items.length === 0) return new Map();
  // in id order: concurrent batches then take the unique-index locks in the same order and cannot deadlock
  const ordered = [...items].sort((a, b) => (a.ev.id < b.ev.id ? -1 : a.ev.id > b.ev.id ? 1 : 0));
  const rows = (await trx('nostr_events')
    .insert(ordered.map((i) => insertRow(i.ev, i.extras)))
    .onConflict('event_id')
    .ignore()
    .returning(['id', 'event_id'])) as { id: string; event_id: string }[];
  return new Map(rows.map((r) => [r.event_id, r.id]));
}

export async function insertTagsFor(trx: Knex, stored: readonly { ev: NostrEvent; rowId: string }[]): Promise<void> {
  const rows = stored.flatMap(({ ev, rowId }) =>
    indexedTags(ev).map((t) => ({ event_row_id: rowId, name: t.name, value: t.value, created_at_nostr: ev.created_at, event_kind: ev.kind })),
  );
  for (let i = 0; i < rows.length; i += 5000) await trx('nostr_event_tags').insert(rows.slice(i, i + 5000));
}

/** Takes back rows stored earlier in this same transaction (their quota was refused). */
export async function deleteRows(trx: Knex, rowIds: readonly string[]): Promise<void> {
  if (rowIds.length > 0) await trx('nostr_events').whereIn('id', rowIds).delete();
}
