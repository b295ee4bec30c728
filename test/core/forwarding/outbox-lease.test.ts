// The outbox lease, read straight from relay_publishes: a claim moves a row out of the due range until its lease
// runs out, a released row is due at once, a row leased under the earlier rule (next_attempt_at left in the past)
// is still not taken while its lease holds, and claims take the oldest due rows first, also before the partition
// has statistics.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { forwardTestEnv } from '../../helpers/forwarding.js';
import { claimDue, releaseClaims, type ClaimOptions } from '../../../src/store/outbox.js';

const app = await startTestApp(t, {
  env: { ...forwardTestEnv, FORWARD_ENABLED: 'false', UPSTREAM_RELAYS: 'ws://127.0.0.1:9/' },
});
const db = app.db.knex;

const claim = (workerId: string, limit: number, extra: Partial<ClaimOptions> = {}) =>
  claimDue(db, { workerId, limit, leaseMs: 60_000, excludeUrls: [], maxAgeSeconds: 3600, backlog: false, ...extra });

async function queue(n: number): Promise<string[]> {
  const key = newKey();
  const evs = Array.from({ length: n }, (_, i) => buildEvent(key.sk, { content: `lease ${i}` }));
  for (const ev of evs) t.equal((await app.admit(ev, { via: 'relay', authed: new Set() })).status, 'accepted');
  return evs.map((e) => e.id);
}

interface LeaseRow {
  id: string;
  status: string;
  attempts: number;
  claimed_by: string | null;
  due_in_s: number;
  lease_in_s: number | null;
}

async function leaseOf(rowId: string): Promise<LeaseRow> {
  const { rows } = (await db.raw(
    `SELECT id, status, attempts, claimed_by, EXTRACT(EPOCH FROM next_attempt_at - now()) AS due_in_s,
       EXTRACT(EPOCH FROM claimed_until - now()) AS lease_in_s
     FROM relay_publishes WHERE id = ?`,
    [rowId],
  )) as { rows: (Omit<LeaseRow, 'due_in_s' | 'lease_in_s'> & { due_in_s: string; lease_in_s: string | null })[] };
  const r = rows[0]!;
  return { ...r, due_in_s: Number(r.due_in_s), lease_in_s: r.lease_in_s === null ? null : Number(r.lease_in_s) };
}

t.test('a claimed row is due again when its lease runs out, not before; a released one at once', async (t) => {
  await queue(1);
  const [row] = await claim('w1', 10);
  t.ok(row, 'the new row is claimed');
  const leased = await leaseOf(row!.id);
  t.match(leased, { status: 'publishing', attempts: 1, claimed_by: 'w1' });
  t.ok(
    leased.due_in_s > 55 && leased.due_in_s <= 60,
    `next_attempt_at moved to the lease end (${leased.due_in_s.toFixed(1)} s)`,
  );
  t.ok(Math.abs(leased.due_in_s - (leased.lease_in_s ?? 0)) < 0.001, 'and equals claimed_until');
  t.same(await claim('w2', 10), [], 'another worker finds nothing due');

  t.equal(await releaseClaims(db, 'w1', [{ id: row!.id, createdAt: row!.createdAt, attempt: row!.attempt }]), 1);
  const released = await leaseOf(row!.id);
  t.match(released, { status: 'pending', attempts: 0, claimed_by: null, lease_in_s: null });
  t.ok(released.due_in_s <= 0, 'a released row is due now');
  const again = await claim('w2', 10);
  t.same(
    again.map((r) => [r.id, r.attempt]),
    [[row!.id, 1]],
    'and the next worker takes it, as attempt 1 again',
  );
  await releaseClaims(
    db,
    'w2',
    again.map((r) => ({ id: r.id, createdAt: r.createdAt, attempt: r.attempt })),
  );
});

t.test('a row leased under the earlier rule (due in the past, lease still running) is not taken', async (t) => {
  await queue(1);
  const [row] = await claim('old-worker', 10);
  t.ok(row);
  // What a process of the previous release left: the lease set, next_attempt_at not moved.
  await db.raw(`UPDATE relay_publishes SET next_attempt_at = now() - interval '1 second' WHERE id = ?`, [row!.id]);
  t.same(await claim('new-worker', 10), [], 'the lease still fences it');
  await db.raw(`UPDATE relay_publishes SET claimed_until = now() - interval '1 second' WHERE id = ?`, [row!.id]);
  const taken = await claim('new-worker', 10);
  t.same(
    taken.map((r) => [r.id, r.attempt]),
    [[row!.id, 2]],
    'once the lease has run out it is claimed, as attempt 2',
  );
  await releaseClaims(
    db,
    'new-worker',
    taken.map((r) => ({ id: r.id, createdAt: r.createdAt, attempt: r.attempt })),
  );
});

t.test(
  'claims take the oldest due rows first, also on a partition without statistics, with or without a backlog',
  async (t) => {
    const { rows: parts } = (await db.raw(
      `SELECT c.oid::regclass::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'relay_publishes'::regclass`,
    )) as { rows: { name: string }[] };
    // Forget what autovacuum may have learned, as for a partition filled in its first minute.
    for (const p of parts) await db.raw(`DELETE FROM pg_statistic WHERE starelid = CAST(? AS regclass)`, [p.name]);
    await queue(60);
    for (const backlog of [true, false]) {
      const { rows: before } = (await db.raw(
        `SELECT id, next_attempt_at AS due FROM relay_publishes WHERE status = 'pending' AND claimed_by IS NULL AND next_attempt_at <= now()`,
      )) as { rows: { id: string; due: Date }[] };
      t.ok(before.length >= 60, `${before.length} rows due`);
      const taken = await claim('w3', 10, { backlog });
      t.equal(taken.length, 10);
      const ids = new Set(taken.map((r) => r.id));
      const newestTaken = Math.max(...before.filter((r) => ids.has(r.id)).map((r) => r.due.getTime()));
      const oldestLeft = Math.min(...before.filter((r) => !ids.has(r.id)).map((r) => r.due.getTime()));
      t.ok(newestTaken <= oldestLeft, `no row left behind was due before a claimed one (backlog: ${backlog})`);
      await releaseClaims(
        db,
        'w3',
        taken.map((r) => ({ id: r.id, createdAt: r.createdAt, attempt: r.attempt })),
      );
    }
  },
);
