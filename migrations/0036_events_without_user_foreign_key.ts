// WRITES: nostr_events no longer checks its user with a foreign key, as 0034 did for usage_events.
//
// PostgreSQL checks a foreign key by locking the referenced row FOR KEY SHARE: every stored event locked its
// author's users row, a WAL record (~55 bytes an event) and a look-up through the trigger machinery (SPI) each, in
// the group commit's one statement. Measured with `npm run bench` (admission, alternated pairs, docs/benchmarks.md).
//
// What the key promised is kept where it matters:
//   - every writer stores an event under the account it has just saved or read: the group commit's statement saves a
//     new author in the same statement (store/event-batch.ts), the import saves the authors of a batch before its
//     events, and saveEvent's callers pass the account they have read (core/admission/pipeline.ts);
//   - the service never deletes a users row (an erasure keeps it, status 'deleted', and deletes the user's events
//     itself: store/user-data.ts eraseUser); an operator's DELETE or TRUNCATE of users still takes the events with it,
//     by the triggers below, as ON DELETE CASCADE did. Emptying users empties the tag rows too, which have had no
//     key to the events since 0028 (a row trigger removes them on DELETE, but TRUNCATE fires none).
//
// What it no longer stops: an event stored for an account an operator deletes at the same moment stays, under an id
// no account has (it is still served by its pubkey). The key made that event's batch fail instead.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `ALTER TABLE nostr_events DROP CONSTRAINT nostr_events_user_id_fkey`,

  `CREATE FUNCTION nostrx_events_follow_user() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    DELETE FROM nostr_events WHERE user_id = OLD.id;
    RETURN OLD;
  END
  $$`,
  `CREATE TRIGGER users_events_deleted AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION nostrx_events_follow_user()`,

  // Not TRUNCATE: emptying users CASCADE already empties relay_publishes (through user_relays) in the same command,
  // and a TRUNCATE of the events, which relay_publishes references, may not name it again. The outbox is empty by
  // then, so the events' own DELETE cascades to nothing; the tag rows go first, whole.
  `CREATE FUNCTION nostrx_events_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    TRUNCATE nostr_event_tags;
    DELETE FROM nostr_events;
    RETURN NULL;
  END
  $$`,
  `CREATE TRIGGER users_events_truncated AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION nostrx_events_truncated()`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0036_events_without_user_foreign_key cannot be rolled back; restore a backup or write a new migration',
  );
}
