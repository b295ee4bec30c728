// A post whose write transaction PostgreSQL picks as a deadlock victim (40P01) is written again, and the client gets
// OK true; when every try is a victim, the client gets `error:` and nothing of the post is stored or charged.
//
// The deadlocks are real. For each try of the group commit, two transactions of the test's own make one:
// - a "gate" holds the author's users row FOR UPDATE, so the group commit, having inserted the event's row, waits
//   in its foreign-key check (FOR KEY SHARE on that row);
// - a "rival" locks the author's ledger row, then inserts a row with the same event id (for another user), and so
//   waits for the group commit's uncommitted row;
// - the gate commits: the group commit goes on to lock the ledger row, which the rival holds, and closes the cycle.
// The rival's deadlock_timeout is one minute and the service's the server's default (1 s), so the group commit is
// the one that checks for the deadlock, finds it, and is rolled back; the rival's insert then goes through, which
// is how the test knows the group commit was the victim. Every step waits for a condition, never for a time.
import t, { type Test } from 'tap';
import knexFactory, { type Knex } from 'knex';
import { startTestApp } from '../../helpers/app.js';
import { createTestDatabaseUrl } from '../../helpers/db.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';
import { waitFor } from '../../helpers/forwarding.js';
import { backendPid, blockedBy, untilLocked, waitsForLock } from '../../helpers/locks.js';
import { RawClient } from '../../helpers/raw-client.js';
import { CONFLICT_ATTEMPTS } from '../../../src/core/admission/conflict-retry.js';
import type { NostrEvent } from 'nostr-tools/pure';

const databaseUrl = await createTestDatabaseUrl(t);
// Events are queued for an upstream relay (outbox rows are part of what must not be half-written); no forwarder runs.
const app = await startTestApp(t, {
  databaseUrl,
  env: { UPSTREAM_RELAYS: 'ws://127.0.0.1:9', FORWARD_ENABLED: 'false' },
});
// The test's own transactions, on connections of their own.
const actors = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 6 } });
t.teardown(() => actors.destroy());
const client = await RawClient.connect(app.relayUrl);
t.teardown(() => client.close());

// The rival's row belongs to another user: its foreign-key check must not touch the author's users row, which the
// next gate takes while the rival is still open.
const bystander = (await app.accounts.forPubkey(newKey().pk)).id;

/** Sends the event and resolves with its OK answer, however long the tries take. */
function publishSlowly(ev: NostrEvent): Promise<[boolean, string]> {
  const answer = client.next((m) => m[0] === 'OK' && m[1] === ev.id, 120_000);
  client.send(['EVENT', ev]);
  return answer.then((m) => [m[2] as boolean, m[3] as string]);
}

interface Author {
  readonly key: Key;
  readonly id: string;
}

/**
 * An author with one post stored, so their users row and today's ledger row exist. The post's usage rows are written
 * before the test takes its locks: a usage flush waiting behind a gate (its foreign key on users) would be a third
 * party in the staged lock graph.
 */
async function author(t: Test): Promise<Author> {
  const key = newKey();
  const first = buildEvent(key.sk, { content: 'first' });
  t.same(await client.publish(first), [true, '']);
  await waitFor('the first post’s usage rows to be written', async () => {
    await app.usage.flush();
    const row = await app.db.knex('usage_events').whereRaw(`event_data->>'event_id' = ?`, [first.id]).first('id');
    return row !== undefined;
  });
  return { key, id: (await app.accounts.forPubkey(key.pk)).id };
}

async function gate(a: Author): Promise<{ trx: Knex.Transaction; pid: number }> {
  const trx = await actors.transaction();
  await trx.raw('SELECT 1 FROM users WHERE id = ? FOR UPDATE', [a.id]);
  return { trx, pid: await backendPid(trx) };
}

/**
 * One deadlock of the group commit, which is waiting behind `held` (a gate). Returns the rival, still open, whose
 * insert went through: the group commit was rolled back.
 */
async function deadlockOnce(
  a: Author,
  ev: NostrEvent,
  held: { trx: Knex.Transaction; pid: number },
): Promise<Knex.Transaction> {
  // the group commit's statement (store/event-batch.ts), by its opening: pg_stat_activity keeps only the first 1 kB
  await untilLocked(actors, 'the group commit waits for the gate', () =>
    blockedBy(actors, held.pid, '%WITH input AS%'),
  );
  const rival = await actors.transaction();
  await rival.raw(`SET LOCAL deadlock_timeout = '60s'`);
  await rival.raw(`SELECT 1 FROM user_quotas WHERE user_id = ? AND quota_type = 'daily' FOR UPDATE`, [a.id]);
  const rivalPid = await backendPid(rival);
  const inserted = rival
    .raw(
      `INSERT INTO nostr_events (event_id, user_id, pubkey, event_kind, created_at_nostr, content, tags, sig)
     VALUES (?, ?, ?, ?, ?, ?, CAST(? AS jsonb), ?)`,
      [ev.id, bystander, ev.pubkey, ev.kind, ev.created_at, ev.content, JSON.stringify(ev.tags), ev.sig],
    )
    .then(() => undefined); // sent now: a knex query runs when it is awaited or then'd
  await untilLocked(actors, 'the rival waits for the group commit', () => waitsForLock(actors, rivalPid));
  await held.trx.commit();
  await inserted; // only possible once the group commit's row is gone: it was the deadlock's victim
  return rival;
}

async function stored(eventId: string): Promise<number> {
  return Number(
    ((await app.db.knex('nostr_events').where({ event_id: eventId }).count({ n: '*' })) as { n: string }[])[0]!.n,
  );
}

async function outboxRows(eventId: string): Promise<number> {
  const rows = (await app.db
    .knex('relay_publishes as p')
    .join('nostr_events as e', 'e.id', 'p.event_id')
    .where('e.event_id', eventId)
    .count({ n: '*' })) as { n: string }[];
  return Number(rows[0]!.n);
}

async function ledger(a: Author): Promise<number> {
  return (
    (await app.db.knex('user_quotas').where({ user_id: a.id, quota_type: 'daily' }).first('posts_used')) as {
      posts_used: number;
    }
  ).posts_used;
}

t.test('a post whose write is a deadlock victim is written again and answered OK true', async (t) => {
  const alice = await author(t);
  const ev = buildEvent(alice.key.sk, { content: 'second' });
  const held = await gate(alice);
  const answer = publishSlowly(ev);
  const rival = await deadlockOnce(alice, ev, held);
  await rival.rollback(); // the retry, waiting for the rival's row, goes on
  t.same(await answer, [true, ''], 'the client never sees the deadlock');
  t.equal(await stored(ev.id), 1, 'stored once');
  t.equal(await outboxRows(ev.id), 1, 'queued once');
  t.equal(await ledger(alice), 2, 'charged once');
});

t.test(
  `after ${CONFLICT_ATTEMPTS} deadlocks in a row the client gets error:, and nothing is stored or charged`,
  async (t) => {
    const bob = await author(t);
    const ev = buildEvent(bob.key.sk, { content: 'unlucky' });
    let held = await gate(bob);
    const answer = publishSlowly(ev);
    let settled = false;
    void answer.then(() => (settled = true));
    let rival: Knex.Transaction | undefined;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt++) {
      rival = await deadlockOnce(bob, ev, held);
      t.pass(`try ${attempt} was a deadlock victim`);
      if (attempt === CONFLICT_ATTEMPTS) break;
      t.notOk(settled, 'not answered while tries are left');
      // The next try waits for the rival's row; the next gate is in place before the rival lets it go.
      held = await gate(bob);
      await rival.rollback();
    }
    t.same(await answer, [false, 'error: could not store the event, try again later']);
    await rival!.rollback();
    t.equal(await stored(ev.id), 0, 'the event is not stored');
    t.equal(await ledger(bob), 1, 'nor charged');
    t.equal(await outboxRows(ev.id), 0, 'nor queued');
    t.same(
      await client.publish(buildEvent(bob.key.sk, { content: 'again' })),
      [true, ''],
      'the refused post’s quota hold was given back',
    );
    t.equal(await ledger(bob), 2);
  },
);
