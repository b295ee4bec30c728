// The embedded database has one connection: an export that a client reads slowly must not keep it (every other
// query of the service would wait behind it). There the export is read whole, then handed out batch by batch.
import t from 'tap';
import { createTestPglite } from '../helpers/db.js';
import { newKey } from '../helpers/events.js';
import { exportUserRows } from '../../src/store/user-data.js';
import { upsertUserByPubkey } from '../../src/store/users.js';

t.test('on PGlite, an export paused after its first batch leaves the connection free', async (t) => {
  const db = (await createTestPglite(t)).knex;
  const { user } = await upsertUserByPubkey(db, newKey().pk);
  await db.raw(
    `INSERT INTO audit_log (table_name, operation, user_id, new_values, actor, created_at)
     SELECT 'users', 'UPDATE', ?, jsonb_build_object('n', g), 'test', now() + make_interval(secs => g) FROM generate_series(1, 25) g`,
    [user.id],
  );

  const batches = exportUserRows(db, user.id, 10)[Symbol.asyncIterator]();
  const first = await batches.next();
  t.notOk(first.done, 'the export has begun');
  // The client stops reading here; the service goes on.
  const other = db('users').count<{ count: string }[]>('* as count');
  const answered = await Promise.race([
    other.then(() => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), 5000)),
  ]);
  t.ok(answered, 'another query is answered while the export waits for its reader');

  const audit: unknown[] = [];
  for (let b = first; !b.done; b = await batches.next()) if (b.value.table === 'audit_log') audit.push(...b.value.rows);
  t.equal(audit.length, 25, 'the export is whole, in batches');
});
