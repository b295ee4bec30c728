// Accounts for a bulk import's authors (store/users.ts upsertUsersByPubkeys). Each account made holds a lock until
// its statement commits (the check against linked keys, migration 0019), and PostgreSQL's lock table has room for
// max_locks_per_transaction × max_connections of them across all sessions (and some slack of shared memory: here a
// statement failed with "out of shared memory" between 7,400 and 20,000). Four times that many authors at once must
// still be saved.
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
