// WRITES: relay_publishes (the forwarding outbox) no longer checks its event or its relay row with foreign keys, as
// 0034 and 0036 did for the usage rows and the events.
//
// PostgreSQL checks a foreign key by locking the referenced row FOR KEY SHARE, through the trigger machinery (SPI),
// for every row written: each outbox row locked the event row its own statement had just inserted (~54 bytes of WAL
// an event) and the user's relay row (~52 bytes a target). With 2 targets an event, `npm run bench` (admission,
// BENCH_UPSTREAMS=2, two alternated rounds, the keys dropped in the bench's database): PostgreSQL CPU 139 and 141 µs
// an event with both keys, 131 and 126 without the event's, 121 and 110 without either; WAL 3,294 → 3,128 bytes.
//
// What the keys did is kept:
//   - an outbox row is only ever written by the statement or transaction that stores its event, with the relay rows
//     that statement read (store/event-batch.ts, forwarding-plan.ts, delivery-audit.ts);
//   - deleting an event deletes its outbox rows, and emptying the events empties the outbox (ON DELETE CASCADE),
//     and now their tag rows as well;
//   - deleting a user's relay keeps its outbox rows with user_relay_id NULL (ON DELETE SET NULL: they are still
//     delivered, by relay_url, and the history stays readable); emptying user_relays does the same to every row.
// What they no longer stop: a relay row deleted while a statement that read it is storing events leaves that
// statement's outbox rows naming it (the key made the whole batch fail instead). Nothing reads a relay row through
// an outbox row but the forwarder's statistics, which then update no row.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `ALTER TABLE relay_publishes DROP CONSTRAINT relay_publishes_event_id_fkey`,
  `ALTER TABLE relay_publishes DROP CONSTRAINT relay_publishes_user_relay_id_fkey`,

  // by the leading column of relay_publishes_event_relay_key, in each month's partition
  `CREATE FUNCTION nostrx_outbox_follow_event() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    DELETE FROM relay_publishes WHERE event_id = OLD.id;
    RETURN OLD;
  END
  $$`,
  `CREATE TRIGGER nostr_events_outbox_deleted AFTER DELETE ON nostr_events
    FOR EACH ROW EXECUTE FUNCTION nostrx_outbox_follow_event()`,
  // the tag rows too: they have had no key to the events since 0028, and TRUNCATE fires no row trigger
  `CREATE FUNCTION nostrx_event_rows_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    TRUNCATE relay_publishes, nostr_event_tags;
    RETURN NULL;
  END
  $$`,
  `CREATE TRIGGER nostr_events_outbox_truncated AFTER TRUNCATE ON nostr_events
    FOR EACH STATEMENT EXECUTE FUNCTION nostrx_event_rows_truncated()`,

  // by idx_relay_publishes_relay, which exists for this
  `CREATE FUNCTION nostrx_outbox_forget_relay() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    UPDATE relay_publishes SET user_relay_id = NULL WHERE user_relay_id = OLD.id;
    RETURN OLD;
  END
  $$`,
  `CREATE TRIGGER user_relays_outbox_deleted AFTER DELETE ON user_relays
    FOR EACH ROW EXECUTE FUNCTION nostrx_outbox_forget_relay()`,
  `CREATE FUNCTION nostrx_outbox_forget_relays() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    UPDATE relay_publishes SET user_relay_id = NULL WHERE user_relay_id IS NOT NULL;
    RETURN NULL;
  END
  $$`,
  `CREATE TRIGGER user_relays_outbox_truncated AFTER TRUNCATE ON user_relays
    FOR EACH STATEMENT EXECUTE FUNCTION nostrx_outbox_forget_relays()`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0037_outbox_without_foreign_keys cannot be rolled back; restore a backup or write a new migration',
  );
}
