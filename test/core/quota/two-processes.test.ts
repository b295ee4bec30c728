// Exactness under concurrency, across two real OS processes on one PostgreSQL database and one Redis: this test
// process runs instance A, a child process (test/helpers/service-process.ts) runs instance B. 100 distinct notes
// of one author are sent at once, one per connection, 50 to each instance: exactly the plan's limit is accepted,
// also when Redis loses every counter (this test's keys only) while the burst is in flight.
import t from 'tap';
import { Redis } from 'ioredis';
import { createTestDatabaseUrl } from '../../helpers/db.js';
import { deletePrefix, testRedisPrefix, testRedisUrl } from '../../helpers/redis.js';
import { startTestApp } from '../../helpers/app.js';
import { startServiceProcess } from '../../helpers/forwarding.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { changePlan } from '../../../src/core/accounts/account-admin.js';

const databaseUrl = await createTestDatabaseUrl(t);
const prefix = testRedisPrefix(t);
const a = await startTestApp(t, { databaseUrl, redis: prefix });
const b = await startServiceProcess(t, {
  DATABASE_URL: databaseUrl,
  REDIS_URL: testRedisUrl,
  REDIS_PREFIX: prefix,
  UPSTREAM_RELAYS: '',
});
const redis = new Redis(testRedisUrl);
t.teardown(() => redis.disconnect());

/** Deletes every key of this test's prefix (never FLUSHALL/FLUSHDB: other tests share the server). */
const flushPrefix = () => deletePrefix(redis, prefix);

interface Burst {
  accepted: number;
  refusals: string[];
  flushedKeys: number;
}

/**
 * Opens 50 connections to each instance, then sends one distinct note per connection, all at once. With
 * `flush`, this test's Redis keys are deleted as soon as the first answer arrives and again after the 30th.
 */
async function burst(key: Key, flush: boolean): Promise<Burst> {
  const clients = await Promise.all(
    Array.from({ length: 100 }, (_, i) => RawClient.connect(i % 2 === 0 ? a.relayUrl : b.relayUrl)),
  );
  try {
    const now = Math.floor(Date.now() / 1000);
    const events = clients.map((_, i) =>
      buildEvent(key.sk, { created_at: now, content: `burst ${i} ${Math.random()}` }),
    );
    let answered = 0;
    const flushes: Promise<number>[] = [];
    const answers = await Promise.all(
      clients.map((c, i) =>
        c.publish(events[i]!).then((r) => {
          answered++;
          if (flush && (answered === 1 || answered === 30)) flushes.push(flushPrefix());
          return r;
        }),
      ),
    );
    const flushedKeys = (await Promise.all(flushes)).reduce((x, y) => x + y, 0);
    return {
      accepted: answers.filter(([ok]) => ok).length,
      refusals: answers.filter(([ok]) => !ok).map(([, m]) => m),
      flushedKeys,
    };
  } finally {
    for (const c of clients) c.close();
  }
}

async function stored(key: Key): Promise<{ events: number; ledger: number }> {
  const knex = a.db.knex;
  const events = Number(
    ((await knex('nostr_events').where({ pubkey: key.pk }).count({ n: '*' })) as { n: string }[])[0]?.n,
  );
  const user = await a.accounts.forPubkey(key.pk);
  const row = (await knex('user_quotas').where({ user_id: user.id, quota_type: 'daily' }).first('posts_used')) as
    { posts_used: number } | undefined;
  return { events, ledger: row?.posts_used ?? 0 };
}

for (const [plan, limit] of [
  ['basic', 3],
  ['premium', 25],
] as const) {
  for (const flush of [false, true]) {
    t.test(
      `${plan}: 100 notes at once over two processes${flush ? ', Redis flushed mid-burst' : ''} → exactly ${limit} accepted`,
      async (t) => {
        const key = newKey();
        if (plan !== 'basic') {
          const user = await a.accounts.forPubkey(key.pk);
          await changePlan(a.accountAdmin, user.id, plan, 'test');
        }
        const r = await burst(key, flush);
        t.equal(r.accepted, limit, `${limit} accepted`);
        t.equal(r.refusals.length, 100 - limit);
        t.ok(
          r.refusals.every((m) =>
            m.startsWith(`rate-limited: daily limit of ${limit} posts reached on the ${plan} plan`),
          ),
          'every refusal is rate-limited: naming the limit',
        );
        t.same(await stored(key), { events: limit, ledger: limit }, 'stored and charged exactly the limit');
        const inFlight = r.refusals.filter((m) => m.includes('counting posts still being stored')).length;
        t.comment(
          `${inFlight} refused while the limit was held by posts in flight, ${r.refusals.length - inFlight} after it was committed`,
        );
        if (flush) t.ok(r.flushedKeys > 0, `Redis lost ${r.flushedKeys} keys during the burst`);

        // Later, with the counters gone again: still refused, by both processes.
        await flushPrefix();
        const late = await burst(key, false);
        t.equal(late.accepted, 0, 'nothing more is accepted after the counters were lost');
        t.same(await stored(key), { events: limit, ledger: limit });
      },
    );
  }
}
