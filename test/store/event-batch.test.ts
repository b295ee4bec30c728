// The one-statement batch insert (store/event-batch.ts) on both databases the service runs on: rows, indexed
// tags, outbox rows and ledger charges together; ids already stored or deleted by their author skipped; a charge
// past a cap stores nothing at all.
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { createTestDatabase, onBothDatabases } from '../helpers/db.js';
import { openDatabase } from '../../src/store/db.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { deletedByAuthors, insertBatch, type BatchItem } from '../../src/store/event-batch.js';
import { isQuotaRefusal } from '../../src/store/retryable-errors.js';
import { NO_UPSTREAM, notForwarded } from '../../src/store/forwarding-plan.js';
import { ensureDefaultRelays } from '../../src/store/user-relays.js';
import { upsertUserByPubkey } from '../../src/store/users.js';
import { storedTagValue } from '../helpers/tag-rows.js';
import { backendPid, blockedBy, untilLocked } from '../helpers/locks.js';

const extras = (userId: string) => ({ userId, dTag: null, expiresAt: undefined });
const daily = { type: 'daily' as const, date: '2026-11-25', resetsAt: '2026-11-26T00:00:00Z' };
const charges = [{ ...daily, limit: -1 }];

async function exercise(t: Test, db: Knex): Promise<void> {
  const k = newKey();
  const { user } = await upsertUserByPubkey(db, k.pk);
  const targets = await ensureDefaultRelays(db, user.id, ['wss://a.example/', 'wss://b.example/']);
  const tagged = buildEvent(k.sk, {
    content: 'tagged',
    tags: [
      ['t', 'x'],
      ['p', k.pk],
    ],
  });
  const plain = buildEvent(k.sk, { content: 'plain' });
  const items: BatchItem[] = [
    { ev: tagged, extras: extras(user.id), forwarding: { ...NO_UPSTREAM, targets }, charges },
    { ev: plain, extras: extras(user.id), forwarding: NO_UPSTREAM, charges },
  ];
  const first = await insertBatch(db, items);
  t.same([...first.rowIds.keys()].sort(), [tagged.id, plain.id].sort());
  t.same(first.totals, new Map([[`${user.id}:daily`, 2]]), 'both posts counted, one ledger row');
  t.same([...first.queued], [tagged.id], 'only the event with targets is queued');
  const tags = (await db('nostr_event_tags')
    .where({ event_row_id: first.rowIds.get(tagged.id) })
    .orderBy('name')
    .select('name', 'value')) as { name: string; value: Buffer }[];
  t.same(tags, [
    { name: 'p', value: storedTagValue(k.pk) },
    { name: 't', value: storedTagValue('x') },
  ]);
  const outbox = (await db('relay_publishes')
    .where({ event_id: first.rowIds.get(tagged.id) })
    .orderBy('relay_url')
    .select('relay_url', 'status')) as { relay_url: string }[];
  t.same(
    outbox.map((r) => r.relay_url),
    ['wss://a.example/', 'wss://b.example/'],
  );
  const rows = (await db('nostr_events')
    .whereIn('event_id', [tagged.id, plain.id])
    .orderBy('content')
    .select('content', 'status', 'total_relays', 'failure_reason')) as Record<string, unknown>[];
  t.match(rows, [
    {
      content: 'plain',
      status: 'published',
      total_relays: 0,
      failure_reason: 'not forwarded: no upstream relays are configured',
    },
    { content: 'tagged', status: 'publishing', total_relays: 2, failure_reason: null },
  ]);

  // again, with an event its author deleted: neither the copy nor the deleted one is stored or counted
  const doomed = buildEvent(k.sk, { content: 'doomed' });
  const deletion = buildEvent(k.sk, { kind: 5, tags: [['e', doomed.id]] });
  await insertBatch(db, [{ ev: deletion, extras: extras(user.id), forwarding: notForwarded('test') }]);
  const second = await insertBatch(db, [
    items[0]!,
    { ev: doomed, extras: extras(user.id), forwarding: { ...NO_UPSTREAM, targets }, charges },
  ]);
  t.equal(second.rowIds.size, 0);
  t.equal(second.totals.size, 0, 'nothing stored, nothing counted');
  t.same([...(await deletedByAuthors(db, [tagged, doomed]))], [doomed.id]);
}

/**
 * New authors' accounts saved by the statement that stores their events: with the id chosen by the caller, with
 * their rows for the default relays and the outbox rows on them. When the pubkey has an account already (another
 * process's) or is linked to one, nothing of theirs is stored: the account is answered, for the caller to look up.
 */
async function newAuthors(t: Test, db: Knex): Promise<void> {
  const fresh = newKey();
  const freshId = randomUUID();
  const raced = newKey();
  const { user: existing } = await upsertUserByPubkey(db, raced.pk);
  const urls = ['wss://a.example/', 'wss://b.example/'];
  await ensureDefaultRelays(db, existing.id, [urls[0]!]); // one of its rows exists already
  const forwarding = { ...NO_UPSTREAM, newTargets: urls };
  const evs = [
    buildEvent(fresh.sk, { content: 'first' }),
    buildEvent(fresh.sk, { content: 'second' }),
    buildEvent(raced.sk, { content: 'raced' }),
  ];
  const written = await insertBatch(
    db,
    evs.map((ev) => ({
      ev,
      extras: extras(ev.pubkey === fresh.pk ? freshId : randomUUID()),
      forwarding,
      charges,
      saveAuthor: true,
    })),
  );
  t.equal(written.rowIds.size, 2, "the new author's events stored");
  t.notOk(written.rowIds.has(evs[2]!.id), 'not the event of an author whose account existed');
  t.same([...written.authors.keys()].sort(), [fresh.pk, raced.pk].sort(), 'both accounts answered');
  t.match(
    written.authors.get(fresh.pk),
    { id: freshId, pubkey: fresh.pk, status: 'active', timezone: 'UTC' },
    'saved with the id chosen',
  );
  t.notOk(written.authors.get(fresh.pk)?.unsaved);
  t.equal(
    written.authors.get(raced.pk)?.id,
    existing.id,
    "the one that existed, not the caller's id: the caller looks it up",
  );
  t.equal(
    Number(
      ((await db('users').whereIn('nostr_public_key', [fresh.pk, raced.pk]).count({ n: '*' })) as { n: string }[])[0]
        ?.n,
    ),
    2,
    'one account each',
  );
  const owners = (await db('nostr_events').where({ pubkey: fresh.pk }).pluck('user_id')) as string[];
  t.same(owners, [freshId, freshId], 'events stored under the account');
  t.equal(written.totals.get(`${freshId}:daily`), 2, 'counted under it');
  const relays = (await db('user_relays')
    .where({ user_id: freshId })
    .orderBy('relay_url')
    .select('id', 'relay_url', 'source', 'is_default')) as { id: string; relay_url: string }[];
  t.match(
    relays,
    urls.map((u) => ({ relay_url: u, source: 'default', is_default: true })),
    'its rows for the default relays',
  );
  const outbox = (await db('relay_publishes as p')
    .join('nostr_events as e', 'e.id', 'p.event_id')
    .where('e.pubkey', fresh.pk)
    .select('p.user_relay_id', 'p.relay_url')) as {
    user_relay_id: string;
    relay_url: string;
  }[];
  t.equal(outbox.length, urls.length * owners.length, 'one outbox row per event and relay');
  t.ok(
    outbox.every((o) => relays.find((r) => r.relay_url === o.relay_url)?.id === o.user_relay_id),
    'each on its row',
  );
  t.equal(written.queued.size, 2);
  t.equal(written.totals.get(`${existing.id}:daily`), undefined, 'nothing counted for the existing account');
  t.same(
    await db('user_relays').where({ user_id: existing.id }).pluck('relay_url'),
    [urls[0]],
    'and no relay rows made for it',
  );

  // a key linked to an account: the account is not saved (migration 0019's trigger skips it), nothing stored
  const linked = newKey();
  await db('user_identities').insert({ user_id: existing.id, pubkey: linked.pk });
  const fromLinked = buildEvent(linked.sk, { content: 'from a linked key' });
  const viaLinked = await insertBatch(db, [
    { ev: fromLinked, extras: extras(randomUUID()), forwarding, charges, saveAuthor: true },
  ]);
  t.equal(viaLinked.rowIds.size, 0, 'a linked key presumed new: nothing stored');
  t.notOk(viaLinked.authors.has(linked.pk), 'and no account answered for it');
  t.same(await db('users').where({ nostr_public_key: linked.pk }).pluck('id'), [], 'nor made');
}

/**
 * Capped charges: each (user, period) row grows only if all the batch's posts fit under its limit; a batch with one
 * that does not is refused whole (NXQ01), with nothing of it stored: no event, tag, outbox row, account or
 * count, not even those of the other users in it.
 */
async function capped(t: Test, db: Knex): Promise<void> {
  const k = newKey();
  const { user } = await upsertUserByPubkey(db, k.pk);
  const other = newKey();
  const otherId = randomUUID();
  const cap = [{ ...daily, limit: 3 }];
  const post = (key: { sk: Uint8Array }, userId: string, content: string, saveAuthor = false): BatchItem => ({
    ev: buildEvent(key.sk, { content, tags: [['t', 'capped']] }),
    extras: extras(userId),
    forwarding: { ...NO_UPSTREAM, newTargets: ['wss://a.example/'] },
    charges: cap,
    saveAuthor,
  });
  const first = await insertBatch(db, [post(k, user.id, 'one'), post(k, user.id, 'two')]);
  t.same(first.totals, new Map([[`${user.id}:daily`, 2]]), 'two of three');
  const limitOf = async () =>
    ((await db('user_quotas').where({ user_id: user.id }).select('posts_used', 'posts_limit')) as object[])[0];
  t.match(await limitOf(), { posts_used: 2, posts_limit: 3 }, 'the row keeps the limit it was charged under');

  const over = [post(other, otherId, 'a new author', true), post(k, user.id, 'three'), post(k, user.id, 'four')];
  const err = await insertBatch(db, over).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isQuotaRefusal(err), 'two more do not fit: refused');
  t.match(String((err as Error).message), /daily quota of user .* has no room/);
  const ids = over.map((i) => i.ev.id);
  t.equal((await db('nostr_events').whereIn('event_id', ids).pluck('id')).length, 0, 'no event of the batch stored');
  t.equal((await db('users').where({ nostr_public_key: other.pk }).pluck('id')).length, 0, 'no account saved');
  t.equal((await db('user_relays').where({ user_id: otherId }).pluck('id')).length, 0, 'no relay rows');
  t.equal((await db('user_quotas').where({ user_id: otherId }).pluck('user_id')).length, 0, 'nothing counted');
  t.match(await limitOf(), { posts_used: 2 }, "the capped user's count unchanged");

  const fits = await insertBatch(db, [over[0]!, over[1]!]);
  t.equal(fits.rowIds.size, 2, 'one more fits, with the new author beside it');
  t.same(fits.totals.get(`${user.id}:daily`), 3);
  t.ok(fits.authors.has(other.pk));
  const full = await insertBatch(db, [over[2]!]).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isQuotaRefusal(full), 'at the cap, a single post is refused');
  const lowered = await insertBatch(
    db,
    [post(k, user.id, 'five')].map((i) => ({ ...i, charges: [{ ...daily, limit: 1 }] })),
  ).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isQuotaRefusal(lowered), 'a limit lowered below the count refuses too');
  const fresh = newKey();
  const freshId = randomUUID(); // every post of one new author carries the one id the service chose
  const tooMany = await insertBatch(
    db,
    [1, 2, 3, 4].map((n) => post(fresh, freshId, `burst ${n}`, true)),
  ).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isQuotaRefusal(tooMany), "a new author's first batch past the cap: no row to conflict with, refused as well");
}

/** Two processes' batches for one capped user at once: the ledger lets exactly one through. */
async function race(t: Test, db: Knex): Promise<void> {
  const k = newKey();
  const { user } = await upsertUserByPubkey(db, k.pk);
  const cap = [{ ...daily, limit: 3 }];
  const batch = (tag: string): BatchItem[] =>
    [1, 2].map((n) => ({
      ev: buildEvent(k.sk, { content: `${tag} ${n}` }),
      extras: extras(user.id),
      forwarding: NO_UPSTREAM,
      charges: cap,
    }));
  for (let round = 0; round < 5; round++) {
    await db('user_quotas').where({ user_id: user.id }).delete();
    const outcomes = await Promise.allSettled([
      insertBatch(db, batch(`a${round}`)),
      insertBatch(db, batch(`b${round}`)),
    ]);
    t.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, `round ${round}: one batch stored`);
    t.ok(
      outcomes.every((o) => o.status === 'fulfilled' || isQuotaRefusal(o.reason)),
      'the other refused by the ledger',
    );
    const used = (await db('user_quotas').where({ user_id: user.id }).pluck('posts_used')) as number[];
    t.same(used, [2], 'counted once, under the cap');
  }
}

/**
 * One event stored by two batches at once (two processes given the same event): the second waits on the first's row
 * in the event id's hash index (an exclusion constraint, migration 0029) and, once the first commits, skips it as
 * stored; had the first rolled back, it would store it itself.
 */
async function sameEventAtOnce(t: Test, db: Knex): Promise<void> {
  const k = newKey();
  const { user } = await upsertUserByPubkey(db, k.pk);
  const item = (ev: ReturnType<typeof buildEvent>): BatchItem => ({
    ev,
    extras: extras(user.id),
    forwarding: NO_UPSTREAM,
  });
  for (const firstCommits of [true, false]) {
    const ev = buildEvent(k.sk, { content: `twice at once, first ${firstCommits ? 'commits' : 'rolls back'}` });
    const trx = await db.transaction();
    const first = await insertBatch(trx, [item(ev)]);
    t.equal(first.rowIds.size, 1);
    const pid = await backendPid(trx);
    const second = insertBatch(db, [item(ev)]);
    await untilLocked(db, 'the second batch waits for the first', () => blockedBy(db, pid));
    if (firstCommits) await trx.commit();
    else await trx.rollback();
    const written = await second;
    const rows = (await db('nostr_events').where({ event_id: ev.id }).pluck('id')) as string[];
    t.equal(rows.length, 1, 'one row for the event');
    if (firstCommits) {
      t.equal(written.rowIds.size, 0, 'the second skips it as stored');
      t.same(rows, [first.rowIds.get(ev.id)]);
    } else t.same(rows, [written.rowIds.get(ev.id)], 'the second stores it, the first having rolled back');
  }
}

/**
 * The plan PostgreSQL caches for the batch once it stops planning each execution (a generic plan) is made from the
 * statistics of the moment, an empty store's at a service's first start. Forced here on the service's own prepared
 * statement: the deletion that names an event must still be read by its primary key, not found by walking another
 * index with a filter, which on a full store would read every live event for each tag naming an id.
 */
async function genericPlan(t: Test, url: string): Promise<void> {
  const one = await openDatabase({ databaseUrl: url, dataDir: '', poolMax: 1 });
  t.teardown(() => one.close());
  const db = one.knex;
  await db.raw('SET plan_cache_mode = force_generic_plan');
  const k = newKey();
  const { user } = await upsertUserByPubkey(db, k.pk);
  await insertBatch(db, [{ ev: buildEvent(k.sk), extras: extras(user.id), forwarding: NO_UPSTREAM, charges }]);
  const { rows } = (await db.raw(
    `SELECT cardinality(parameter_types) AS n FROM pg_prepared_statements WHERE name = 'nostrx_insert_batch'`,
  )) as { rows: { n: number }[] };
  t.equal(rows.length, 1, 'the batch ran as a prepared statement on this connection');
  const nulls = Array.from({ length: rows[0]?.n ?? 0 }, () => 'NULL').join(', ');
  const plan = (
    (await db.raw(`EXPLAIN (COSTS OFF) EXECUTE nostrx_insert_batch(${nulls})`)) as { rows: { 'QUERY PLAN': string }[] }
  ).rows
    .map((r) => r['QUERY PLAN'])
    .join('\n');
  t.notOk(/\$\d/.test(plan.split('\n')[0] ?? ''), 'explained as executed');
  // the planner numbers the aliases of a statement's inner queries (d_2)
  t.match(
    plan,
    /Index Scan using nostr_events_pkey on nostr_events d(_\d+)?\n\s+Index Cond: \(id = t\.event_row_id\)/,
    'the naming deletion read by its key',
  );
  t.notMatch(plan, /on nostr_events d(_\d+)?\n\s+(Join )?Filter/, 'and by nothing else with a filter');
  t.notMatch(plan, /Seq Scan/, "no table read whole (a user's own relays are looked up by their key)");
}

t.test('the batch and its skips', async (t) => onBothDatabases(t, exercise));
t.test('one event in two batches at once', async (t) => sameEventAtOnce(t, (await createTestDatabase(t)).knex));
t.test('the generic plan of an empty store', async (t) => genericPlan(t, (await createTestDatabase(t)).url));
t.test('capped charges: all or nothing', async (t) => onBothDatabases(t, capped));
t.test('two batches for one capped user at once', async (t) => race(t, (await createTestDatabase(t)).knex));
t.test("new authors' accounts saved with their events", async (t) => onBothDatabases(t, newAuthors));
