// A post whose write transaction PostgreSQL picks as a deadlock victim (40P01) is written again, and the client gets
// OK true; when every try is a victim, the client gets `error:` and nothing of the post is stored or charged.
//
// The deadlocks are real. The group commit is one statement: it inserts the event's row and upserts the author's
// ledger rows, locking each: on a plan with a daily and a monthly limit, the day's row and the month's. For each
// try, a "gate" transaction of the test's own makes a deadlock with it:
// - the gate locks one of the two ledger rows, so the statement, having inserted the event's row, waits for it;
// - the gate then inserts a row with the same event id (for another user), and so waits for the statement's
//   uncommitted row: a cycle.
// The gate's deadlock_timeout is one minute and the service's the server's default (1 s), so the group commit is
// the one that checks for the deadlock, finds it, and is rolled back; the gate's insert then goes through, which is
// how the test knows the group commit was the victim. The next try waits for the gate's row; the next gate locks the
// other of the two rows, which no one holds, before the last one lets go: every lock a gate takes is free, and
// every step waits for a condition, never for a time.
import t, { type Test } from 'tap';
import knexFactory, { type Knex } from 'knex';
import { startTestApp } from '../../helpers/app.js';
import { createTestDatabaseUrl } from '../../helpers/db.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';
import { waitFor } from '../../helpers/wait-for.js';
import { backendPid, blockedBy, untilLocked } from '../../helpers/locks.js';
import { RawClient } from '../../helpers/raw-client.js';
import { CONFLICT_ATTEMPTS } from '../../../src/core/admission/conflict-retry.js';
import { changePlan } from '../../../src/core/accounts/account-admin.js';
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

// The rival's row belongs to another user.
const bystander = (await app.accounts.forPubkey(newKey().pk)).id;
// Two ledger rows a post: the authors' plan limits both the day and the month.
await app.db.knex('subscription_plans').insert({
  plan_code: 'day_and_month',
  name: 'Day and month',
  price_monthly: '1.00',
  daily_post_limit: 50,
  monthly_post_limit: 500,
});
app.invalidation.allPlans();

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
 * An author on the two-period plan with one post stored, so their ledger rows for today and this month exist. The
 * post's usage rows are written before the test takes its locks, so that no flush runs beside the staged lock graph.
 */
async function author(t: Test): Promise<Author> {
  const key = newKey();
  await changePlan(app.accountAdmin, (await app.accounts.forPubkey(key.pk)).id, 'day_and_month', 'test');
  const first = buildEvent(key.sk, { content: 'first' });
  t.same(await client.publish(first), [true, '']);
  await waitFor('the first post’s usage rows to be written', async () => {
    await app.usage.flush();
    const row = await app.db.knex('usage_events').whereRaw(`event_data->>'event_id' = ?`, [first.id]).first('id');
    return row !== undefined;
  });
  return { key, id: (await app.accounts.forPubkey(key.pk)).id };
}

type Period = 'daily' | 'monthly';

/** A gate on the author's ledger row of one period, taken at once (no one holds it). */
async function gate(a: Author, period: Period): Promise<{ trx: Knex.Transaction; pid: number }> {
  const trx = await actors.transaction();
  await trx.raw(`SET LOCAL deadlock_timeout = '60s'`);
  const [row] = (
    (await trx.raw(`SELECT id FROM user_quotas WHERE user_id = ? AND quota_type = ? FOR UPDATE`, [a.id, period])) as {
      rows: unknown[];
    }
  ).rows;
  if (row === undefined) throw new Error(`no ${period} ledger row to lock for ${a.id}`);
  return { trx, pid: await backendPid(trx) };
}

/**
 * One deadlock of the group commit with `held` (a gate). Returns the gate, still open, whose insert went through:
 * the group commit was rolled back.
 */
async function deadlockOnce(ev: NostrEvent, held: { trx: Knex.Transaction; pid: number }): Promise<Knex.Transaction> {
  // the group commit's statement (store/event-batch.ts), by its opening: pg_stat_activity keeps only the first 1 kB
  await untilLocked(actors, 'the group commit waits for the gate', () =>
    blockedBy(actors, held.pid, '%WITH input AS%'),
  );
  await held.trx.raw(
    `INSERT INTO nostr_events (event_id, user_id, pubkey, event_kind, created_at_nostr, content, tags, sig)
     VALUES (?, ?, ?, ?, ?, ?, CAST(? AS json), decode(?, 'hex'))`,
    [ev.id, bystander, ev.pubkey, ev.kind, ev.created_at, ev.content, JSON.stringify(ev.tags), ev.sig],
  ); // only possible once the group commit's row is gone: it was the deadlock's victim
  return held.trx;
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
  const held = await gate(alice, 'daily');
  const answer = publishSlowly(ev);
  const rival = await deadlockOnce(ev, held);
  await rival.rollback(); // the retry, waiting for the gate's row, goes on
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
    let held = await gate(bob, 'daily');
    const answer = publishSlowly(ev);
    let settled = false;
    void answer.then(() => (settled = true));
    let rival: Knex.Transaction | undefined;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt++) {
      rival = await deadlockOnce(ev, held);
      t.pass(`try ${attempt} was a deadlock victim`);
      if (attempt === CONFLICT_ATTEMPTS) break;
      t.notOk(settled, 'not answered while tries are left');
      // The next try waits for this gate's row; the next gate, on the other row, is in place before this one goes.
      held = await gate(bob, attempt % 2 === 1 ? 'monthly' : 'daily');
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
