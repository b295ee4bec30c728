// Accounts for a bulk import's authors (store/users.ts upsertUsersByPubkeys). Until migration 0033 each account made
// held a slot of PostgreSQL's shared lock table until its statement committed (the check against linked keys), and
// the table has room for max_locks_per_transaction × max_connections of them across all sessions: a statement of
// 20,000 new authors failed with "out of shared memory", and so, for a moment, did every other session that needed a
// lock. Now a key is claimed in a UNIQUE index, which takes no lock per key.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { upsertUsersByPubkeys } from '../../src/store/users.js';
import { createTestDatabase } from '../helpers/db.js';

const db = (await createTestDatabase(t)).knex;
const { rows } = (await db.raw(
  `SELECT current_setting('max_locks_per_transaction')::int
     * (current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int) AS slots`,
)) as { rows: { slots: number }[] };
const slots = rows[0]?.slots ?? 0;

t.test(`four times as many new authors at once as the server's ${slots} lock slots`, async (t) => {
  const keys = Array.from({ length: 4 * slots }, () => randomBytes(32).toString('hex'));
  const made = await upsertUsersByPubkeys(db, keys);
  t.equal(made.size, keys.length, 'an account for every key');
  t.ok(
    keys.every((k) => made.get(k)?.pubkey === k),
    'each under its key',
  );
  const stored = (await db('users').count('* as n').first()) as { n: string | number };
  t.equal(Number(stored.n), keys.length, 'one row each');
  const again = await upsertUsersByPubkeys(db, keys);
  t.ok(
    keys.every((k) => again.get(k)?.id === made.get(k)?.id),
    'asked again, the same accounts, none made',
  );
});

t.test('saving accounts holds no lock per account until its transaction ends', async (t) => {
  const keys = Array.from({ length: 2000 }, () => randomBytes(32).toString('hex'));
  await db.transaction(async (trx) => {
    const made = await upsertUsersByPubkeys(trx, keys);
    t.equal(made.size, keys.length);
    const { rows } = (await trx.raw(
      `SELECT count(*)::int AS held, count(*) FILTER (WHERE locktype = 'advisory')::int AS advisory
       FROM pg_locks WHERE pid = pg_backend_pid()`,
    )) as { rows: { held: number; advisory: number }[] };
    t.equal(rows[0]?.advisory, 0, 'no advisory lock');
    t.ok((rows[0]?.held ?? Infinity) < 50, `a few locks of tables and indexes (${rows[0]?.held}), not one a key`);
  });
});
