// A new author's first post: their account is saved by the statement that stores the event and charges the
// ledger, in the same commit (core/accounts forNewAuthor, store/event-batch.ts), and a key no account can have is
// not looked up (core/accounts/known-keys.ts), so a first post is one statement, as a cached author's is; when
// another process made the account meanwhile, the statement stores nothing and the post is admitted again. Two instances (each with its own caches and connections, as two processes have) on one
// PostgreSQL database and one Redis; the statements are counted on the wire (bench/pg-counter.ts, the benchmark's
// counter) between instance A and the server.
import t from 'tap';
import knexFactory from 'knex';
import { Redis } from 'ioredis';
import { countsBetween, startWireCounter, type WireCounts } from '../../../bench/pg-counter.js';
import { createTestDatabaseUrl } from '../../helpers/db.js';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { waitFor } from '../../helpers/wait-for.js';
import { subscribeUser } from '../../helpers/forwarding.js';
import { testRedisPrefix, testRedisUrl } from '../../helpers/redis.js';
import type { Admission } from '../../../src/core/admission/index.js';

const databaseUrl = await createTestDatabaseUrl(t);
const counter = await startWireCounter({ host: '127.0.0.1', port: Number(new URL(databaseUrl).port || 5432) });
const viaCounter = new URL(databaseUrl);
viaCounter.port = String(counter.port);
const prefix = testRedisPrefix(t);
// the forwarder off: its polls would be statements of their own while A's are counted
const env = { FORWARD_ENABLED: 'false' };
const a = await startTestApp(t, { databaseUrl: viaCounter.toString(), redis: prefix, env });
const b = await startTestApp(t, { databaseUrl, redis: prefix, env });
t.teardown(() => counter.close());
const db = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 4 } });
t.teardown(() => db.destroy());
const redis = new Redis(testRedisUrl);
t.teardown(() => redis.disconnect());
const relayCtx = { via: 'relay' as const, authed: new Set<string>() };

const accountsOf = async (pubkey: string) =>
  (await db('users').where({ nostr_public_key: pubkey }).select('id')) as { id: string }[];
const dailyUsed = async (userId: string) =>
  Number(
    (
      (await db('user_quotas').where({ user_id: userId, quota_type: 'daily' }).first('posts_used')) as
        { posts_used: number } | undefined
    )?.posts_used ?? 0,
  );

/** The user's daily counter in Redis once settled: committed posts `u` and holds left, or undefined if none yet. */
async function dailyCounter(userId: string): Promise<{ used: number; holds: number } | undefined> {
  let cursor = '0';
  const found: string[] = [];
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}quota:{${userId}}:d:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys.filter((key) => !key.endsWith(':h')));
  } while (cursor !== '0');
  if (found.length !== 1) return undefined;
  const used = await redis.hget(found[0]!, 'u');
  return used === null ? undefined : { used: Number(used), holds: await redis.zcard(`${found[0]!}:h`) };
}

/** The user's daily counter once every hold on it is given back or confirmed. */
const settledCounter = (userId: string) =>
  waitFor('the counter to be settled', async () => {
    const c = await dailyCounter(userId);
    return c?.holds === 0 && c;
  });

/** The statements an instance (A) sends while admitting `ev`, counted once everything before it has been answered. */
async function statementsOf(
  ev: ReturnType<typeof buildEvent>,
  app = a,
  wire = counter,
): Promise<{ answer: Admission; counts: WireCounts }> {
  await app.usage.flush();
  await app.plans.all(); // the plan list, cached a minute: read before, not during
  await waitFor('the instance to be quiet', async () => wire.inFlight() === 0);
  const before = wire.snapshot();
  const answer = await app.admit(ev, relayCtx);
  const counts = countsBetween(before, wire.snapshot());
  // maintenance's sweep of expired events runs every minute in every process: never part of an admission
  for (const label of Object.keys(counts.byStatement)) {
    if (label.includes('expires_at')) {
      counts.statements -= counts.byStatement[label]!;
      delete counts.byStatement[label];
    }
  }
  return { answer, counts };
}

t.test("a first post is the batch alone; a returning author's, not cached, the look-up and the batch", async (t) => {
  // a returning author on the basic plan, known to Redis (B admitted their post) but not cached by A; A reads its
  // keys again, as a process that started after the account was made
  const returning = newKey();
  t.equal((await b.admit(buildEvent(returning.sk, { content: 'through B' }), relayCtx)).status, 'accepted');
  const known = (await b.accounts.find(returning.pk))!;
  await waitFor("B's count in Redis", async () => (await dailyCounter(known.id))?.holds === 0);
  await a.accounts.loadKeys();
  const old = await statementsOf(buildEvent(returning.sk, { content: 'a returning author' }));
  t.equal(old.answer.status, 'accepted');
  t.same(old.counts.byStatement, { nostrx_user_with_plan: 1, nostrx_insert_batch: 1 }, 'the look-up, then the batch');

  const author = newKey();
  const first = await statementsOf(buildEvent(author.sk, { content: 'a first post' }));
  t.equal(first.answer.status, 'accepted');
  // no look-up (no account key can be theirs: core/accounts/known-keys.ts), then one statement: the batch, which
  // saves the account, stores the event and charges the ledger, and commits on its own
  t.same(
    first.counts.byStatement,
    { nostrx_insert_batch: 1 },
    'the account is saved by the statement that stores the event',
  );
  t.equal(first.counts.roundTrips, 1);
  t.equal((await accountsOf(author.pk)).length, 1);
  const again = await statementsOf(buildEvent(author.sk, { content: 'a second post' }));
  t.same(again.counts.byStatement, { nostrx_insert_batch: 1 }, 'their next post: the account is cached');
});

t.test(
  'an account made by another process since the keys were read: the post is admitted again, under it',
  async (t) => {
    const k = newKey();
    // made and put on premium elsewhere (an admin, a payment), with no post: nothing told this process of it
    const accountId = await subscribeUser(db, k.pk, 'premium');
    t.ok(a.accounts.isNew(k.pk), 'A takes the author as new');
    const raced = await statementsOf(buildEvent(k.sk, { content: 'through A, which takes the author as new' }));
    t.equal(raced.answer.status, 'accepted');
    t.same(
      raced.counts.byStatement,
      { nostrx_insert_batch: 2, nostrx_user_with_plan: 1 },
      'the batch (which stores nothing), the look-up, the batch',
    );
    t.same(await accountsOf(k.pk), [{ id: accountId }], 'no second account');
    t.same(await db('nostr_events').where({ pubkey: k.pk }).pluck('user_id'), [accountId]);
    t.equal(await dailyUsed(accountId), 1, 'counted once, under the account');
    t.equal((await a.quota.status((await a.accounts.find(k.pk))!)).plan, 'premium', "on the account's plan");
    const live = await settledCounter(accountId);
    t.same(live, { used: 1, holds: 0 }, 'no hold left behind by the withdrawn try');
    await a.usage.flush();
    const charged = (await db('usage_events')
      .where({ event_action: 'post_charged' })
      .whereIn('user_id', db('users').where({ nostr_public_key: k.pk }).select('id'))
      .pluck('posts_used_after')) as number[];
    t.same(charged, [1], 'one usage row, none for the withdrawn try');
    const next = await statementsOf(buildEvent(k.sk, { content: 'and the next one' }));
    t.same(next.counts.byStatement, { nostrx_insert_batch: 1 }, 'then cached');
  },
);

t.test(
  'an author who posted through another process is heard of: their first post here is looked up once',
  async (t) => {
    const k = newKey();
    t.equal((await b.admit(buildEvent(k.sk, { content: 'through B' }), relayCtx)).status, 'accepted');
    // B's event reaches A through the fan-out (Redis): its author's key names an account
    await waitFor('A to hear of the author', async () => !a.accounts.isNew(k.pk));
    const [account] = await accountsOf(k.pk);
    await waitFor("B's count in Redis", async () => (await dailyCounter(account!.id))?.holds === 0);
    const here = await statementsOf(buildEvent(k.sk, { content: 'through A' }));
    t.equal(here.answer.status, 'accepted');
    t.same(
      here.counts.byStatement,
      { nostrx_user_with_plan: 1, nostrx_insert_batch: 1 },
      'the look-up, then the batch',
    );
    t.equal(await dailyUsed(account!.id), 2);
  },
);

t.test('a replaceable event of an author presumed new whose account exists: that account decides', async (t) => {
  const k = newKey();
  const [made] = (await db('users').insert({ nostr_public_key: k.pk }).returning('id')) as { id: string }[];
  t.ok(a.accounts.isNew(k.pk));
  const profile = buildEvent(k.sk, { kind: 0, content: '{"name":"made elsewhere"}' });
  t.equal((await a.admit(profile, relayCtx)).status, 'accepted');
  t.same(await accountsOf(k.pk), [made], 'no second account');
  t.same(await db('nostr_events').where({ event_id: profile.id }).pluck('user_id'), [made!.id], 'stored under it');

  const s = newKey();
  await db('users').insert({ nostr_public_key: s.pk, status: 'suspended' });
  const theirs = buildEvent(s.sk, { kind: 0, content: '{"name":"suspended elsewhere"}' });
  t.match(await a.admit(theirs, relayCtx), { status: 'rejected', rejection: { prefix: 'blocked' } });
  t.same(await db('nostr_events').where({ event_id: theirs.id }).pluck('id'), [], 'a suspended one refuses it');
});

t.test(
  'a suspended account made elsewhere since the keys were read: its post is refused, nothing stored',
  async (t) => {
    const k = newKey();
    await db('users').insert({ nostr_public_key: k.pk, status: 'suspended' });
    const ev = buildEvent(k.sk, { content: 'from a suspended account' });
    t.match(await a.admit(ev, relayCtx), { status: 'rejected', rejection: { prefix: 'blocked' } });
    t.equal((await accountsOf(k.pk)).length, 1);
    t.same(await db('nostr_events').where({ event_id: ev.id }).pluck('id'), [], 'not stored');
  },
);

t.test("a key linked to an account elsewhere since the keys were read: its posts are the account's", async (t) => {
  const owner = newKey();
  const ownerId = await subscribeUser(db, owner.pk, 'advanced'); // a plan with multiple identities
  const linked = newKey();
  // linked by another process, whose invalidation message never came (the hint is then wrong: the statement decides)
  await db('user_identities').insert({ user_id: ownerId, pubkey: linked.pk });
  const ev = buildEvent(linked.sk, { content: 'from a linked key' });
  t.equal((await a.admit(ev, relayCtx)).status, 'accepted');
  t.same(await accountsOf(linked.pk), [], 'no account of its own');
  t.same(await db('nostr_events').where({ event_id: ev.id }).pluck('user_id'), [ownerId], "stored as the owner's");

  const basicOwner = newKey();
  const [basic] = (await db('users').insert({ nostr_public_key: basicOwner.pk }).returning('id')) as { id: string }[];
  const other = newKey();
  await db('user_identities').insert({ user_id: basic!.id, pubkey: other.pk });
  const refused = buildEvent(other.sk, { content: "a linked key on a plan that doesn't allow one" });
  t.match(await a.admit(refused, relayCtx), { status: 'rejected', rejection: { prefix: 'restricted' } });
  t.same(await db('nostr_events').where({ event_id: refused.id }).pluck('id'), [], 'not stored');
  t.same(await accountsOf(other.pk), [], 'and no account made for the key');
});

t.test('a first post is counted in the quota exactly once', async (t) => {
  const k = newKey();
  const first = buildEvent(k.sk, { content: 'first' });
  t.equal((await a.admit(first, relayCtx)).status, 'accepted');
  const [account] = await accountsOf(k.pk);
  t.ok(account, 'the account exists');
  const user = (await a.accounts.find(k.pk))!;
  t.equal(user.id, account!.id, 'A caches the account as saved');
  t.match(user.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]/, 'with the time-ordered (v7) id the service made');
  t.notOk(user.unsaved);
  t.equal(await dailyUsed(user.id), 1, 'the ledger counted it');
  t.equal((await a.quota.status(user)).daily.used, 1);
  // the live counter: 1 committed post, no hold left
  const live = await settledCounter(user.id);
  t.same(live, { used: 1, holds: 0 });
  await a.usage.flush();
  const charged = (await db('usage_events')
    .where({ user_id: user.id, event_action: 'post_charged' })
    .select('posts_used_after')) as { posts_used_after: number }[];
  t.same(charged, [{ posts_used_after: 1 }], 'one usage row, counting it as the first');

  t.equal((await a.admit(first, relayCtx)).status, 'duplicate', 'sent again: a duplicate');
  t.equal((await b.admit(first, relayCtx)).status, 'duplicate', 'also to the other instance');
  t.equal(await dailyUsed(user.id), 1, 'not counted again');
  const more = await Promise.all([1, 2, 3].map((i) => b.admit(buildEvent(k.sk, { content: `post ${i}` }), relayCtx)));
  t.same(
    more.map((m) => m.status).sort(),
    ['accepted', 'accepted', 'rejected'],
    'the basic plan has 3 a day: the first post took one of them, exactly',
  );
  t.equal(await dailyUsed(user.id), 3);
});

t.test('two instances receiving the first posts of the same new authors at once: one account each', async (t) => {
  const keys = Array.from({ length: 20 }, newKey);
  const events = keys.flatMap((k) => [buildEvent(k.sk, { content: 'to A' }), buildEvent(k.sk, { content: 'to B' })]);
  const answers = await Promise.all(events.map((ev, i) => (i % 2 === 0 ? a : b).admit(ev, relayCtx)));
  t.same(new Set(answers.map((x) => x.status)), new Set(['accepted']), 'every post accepted');
  for (const k of keys) {
    const accounts = await accountsOf(k.pk);
    t.equal(accounts.length, 1, 'one account');
    const owners = (await db('nostr_events').where({ pubkey: k.pk }).pluck('user_id')) as string[];
    t.same(owners, [accounts[0]!.id, accounts[0]!.id], 'both posts stored under it');
    t.equal(await dailyUsed(accounts[0]!.id), 2, 'and counted under it, each once');
    for (const app of [a, b])
      t.equal((await app.accounts.find(k.pk))?.id, accounts[0]!.id, 'each instance knows it by its stored id');
  }
});

t.test('an account saved elsewhere while the first post is being stored: the post goes to that account', async (t) => {
  const k = newKey();
  // another process saves the account and has not committed yet: A does not see it, and takes the author as new
  const other = await db.transaction();
  const [row] = (await other('users').insert({ nostr_public_key: k.pk }).returning('id')) as { id: string }[];
  const answer = a.admit(buildEvent(k.sk, { content: 'first post, raced' }), relayCtx);
  await waitFor('A to wait for the other transaction', async () => {
    const { rows } = (await db.raw(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    )) as {
      rows: { n: string }[];
    };
    return Number(rows[0]?.n) > 0;
  });
  await other.commit();
  t.equal((await answer).status, 'accepted');
  t.same(await accountsOf(k.pk), [row], 'still one account: the one saved first');
  t.same(await db('nostr_events').where({ pubkey: k.pk }).pluck('user_id'), [row!.id], 'the post is stored under it');
  t.equal(await dailyUsed(row!.id), 1, 'and counted under it');
  t.equal((await a.accounts.find(k.pk))?.id, row!.id, 'A caches the stored id, not the one it chose');
  await a.usage.flush();
  t.equal(
    Number(
      (
        (await db('usage_events').where({ user_id: row!.id, event_action: 'post_charged' }).count({ n: '*' })) as {
          n: string;
        }[]
      )[0]?.n,
    ),
    1,
    'the usage row names the stored account',
  );
});

t.test("a new author's first event of a replaceable kind saves the account in its own transaction", async (t) => {
  const k = newKey();
  const profile = buildEvent(k.sk, { kind: 0, content: '{"name":"new"}' });
  t.equal((await a.admit(profile, relayCtx)).status, 'accepted');
  const accounts = await accountsOf(k.pk);
  t.equal(accounts.length, 1);
  t.same(await db('nostr_events').where({ event_id: profile.id }).pluck('user_id'), [accounts[0]!.id]);
  t.equal((await a.accounts.find(k.pk))?.id, accounts[0]!.id);
});

t.test(
  "with default relays, a new author's second post reads no relay rows: their first post's statement made them",
  async (t) => {
    // an instance with a default relay (nothing listens there; the forwarder is off), counted on a wire of its own
    const wire = await startWireCounter({ host: '127.0.0.1', port: Number(new URL(databaseUrl).port || 5432) });
    t.teardown(() => wire.close());
    const via = new URL(databaseUrl);
    via.port = String(wire.port);
    const c = await startTestApp(t, {
      databaseUrl: via.toString(),
      redis: prefix,
      env: { ...env, UPSTREAM_RELAYS: 'ws://127.0.0.1:9/' },
    });
    const k = newKey();
    const first = await statementsOf(buildEvent(k.sk, { content: 'first, with a default relay' }), c, wire);
    t.match(first.answer, { status: 'accepted', queued: true });
    const second = await statementsOf(buildEvent(k.sk, { content: 'second' }), c, wire);
    t.match(second.answer, { status: 'accepted', queued: true });
    t.same(
      Object.keys(second.counts.byStatement).filter((s) => /user_relays/i.test(s)),
      [],
      'the relay rows are not read again',
    );
    t.equal(second.counts.statements, 1, 'the batch alone');
    const [account] = await accountsOf(k.pk);
    const outbox = (await db('relay_publishes as p')
      .join('nostr_events as e', 'e.id', 'p.event_id')
      .where('e.pubkey', k.pk)
      .select('p.user_relay_id', 'p.relay_url')) as { user_relay_id: string; relay_url: string }[];
    const row = (await db('user_relays').where({ user_id: account!.id }).select('id', 'relay_url')) as {
      id: string;
      relay_url: string;
    }[];
    t.equal(row.length, 1, 'one row for the default relay');
    t.same(
      outbox.map((o) => [o.user_relay_id, o.relay_url]),
      [
        [row[0]!.id, row[0]!.relay_url],
        [row[0]!.id, row[0]!.relay_url],
      ],
      "both posts queued to it, through the user's row",
    );
  },
);
