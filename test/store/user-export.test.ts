// The embedded database has one connection: an export that a client reads slowly must not keep it (every other
// query of the service would wait behind it). There the export is read whole, then handed out batch by batch. And
// rows come out as a client reads them: an event's signature in hex, as on PostgreSQL.
import t from 'tap';
import { createTestPglite, onBothDatabases } from '../helpers/db.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { insertBatch } from '../../src/store/event-batch.js';
import { NO_UPSTREAM } from '../../src/store/forwarding-plan.js';
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

t.test("an exported event's signature is the hex NIP-01 writes, not the bytes it is stored as", (t) => {
  onBothDatabases(t, async (t, db) => {
    const key = newKey();
    const { user } = await upsertUserByPubkey(db, key.pk);
    const ev = buildEvent(key.sk, { content: 'exported' });
    await insertBatch(db, [
      { ev, extras: { userId: user.id, dTag: null, expiresAt: undefined }, forwarding: NO_UPSTREAM },
    ]);
    const events: Record<string, unknown>[] = [];
    for await (const batch of exportUserRows(db, user.id, 10)) {
      if (batch.table === 'nostr_events') events.push(...(batch.rows as Record<string, unknown>[]));
    }
    t.match(events, [{ event_id: ev.id, pubkey: ev.pubkey, sig: ev.sig }]);
  });
  t.end();
});
