// WRITES: usage_events (a log: a post counted, a refusal, a plan change) no longer checks its user with a foreign key.
//
// The usage recorder writes its rows in transactions of their own (core/ops/usage-recorder.ts), and PostgreSQL
// checks a foreign key by locking the referenced row FOR KEY SHARE: every flush locked the users row of each user in
// it once more, a WAL record each (~50 bytes an accepted event of a returning author, half of the users table's WAL
// at saturation) and a look-up each. Measured with `npm run bench` (admission, two alternated pairs, the constraint
// dropped in the bench's database): PostgreSQL CPU 170 and 154 µs an event with it, 146 and 148 without; WAL 2,691
// and 2,677 bytes against 2,611 and 2,629.
//
// What the key promised is kept where it matters:
//   - a row names the account its post was admitted under, which the statement storing the post has saved by then;
//     only a new author's first post that failed to store (or was refused before the account was saved) leaves a
//     row naming the id the account was to have. With the key, such a row failed the recorder's whole flush, and
//     every other user's rows in it were dropped with it;
//   - the service never deletes a users row (an erasure keeps it, status 'deleted', and deletes the user's usage rows
//     itself: store/user-data.ts eraseUser); an operator's DELETE or TRUNCATE of users still takes the rows with it,
//     by the triggers below, as ON DELETE CASCADE did.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `ALTER TABLE usage_events DROP CONSTRAINT usage_events_user_id_fkey`,

  `CREATE FUNCTION nostrx_usage_events_follow_user() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    DELETE FROM usage_events WHERE user_id = OLD.id;
    RETURN OLD;
  END
  $$`,
  `CREATE TRIGGER users_usage_events_deleted AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION nostrx_usage_events_follow_user()`,

  `CREATE FUNCTION nostrx_usage_events_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    TRUNCATE usage_events;
    RETURN NULL;
  END
  $$`,
  `CREATE TRIGGER users_usage_events_truncated AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION nostrx_usage_events_truncated()`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0034_usage_events_without_foreign_key cannot be rolled back; restore a backup or write a new migration',
  );
}
