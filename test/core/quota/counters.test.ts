// The live quota counters (store/quota-counters.ts), Redis and memory alike: one call checks every period and
// holds one post only if all have room; holds lapse by themselves; settle removes the hold and raises the
// committed count to what Postgres reported (never lowers it); a missing counter asks to be rebuilt; record (a post
// stored without a hold) raises the count or makes the counter.
import t from 'tap';
import { Redis } from 'ioredis';
import {
  memoryQuotaCounters,
  redisQuotaCounters,
  type CounterPeriod,
  type QuotaCounters,
} from '../../../src/store/quota-counters.js';
import { testRedisPrefix, testRedisUrl } from '../../helpers/redis.js';

const redis = new Redis(testRedisUrl);
t.teardown(() => redis.disconnect());
const prefix = testRedisPrefix(t);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const day = (cap: number): CounterPeriod => ({ key: 'd:2026-11-25', cap, ttlSeconds: 3600 });
const month = (cap: number): CounterPeriod => ({ key: 'm:2026-11-01', cap, ttlSeconds: 7200 });

const kinds: [string, (holdMs: number) => QuotaCounters][] = [
  ['redis', (holdMs) => redisQuotaCounters(redis, `${prefix}${holdMs}:`, holdMs)],
  ['memory', (holdMs) => memoryQuotaCounters(holdMs)],
];

for (const [name, make] of kinds) {
  t.test(`${name}: a missing counter is rebuilt from the seed, then holds up to the cap`, async (t) => {
    const c = make(30_000);
    t.same(await c.reserve('u1', [day(3)], 'a'), { status: 'missing' });
    t.same(await c.reserve('u1', [day(3)], 'a', [1]), { status: 'held' }, 'seeded with 1 committed');
    t.same(await c.reserve('u1', [day(3)], 'b'), { status: 'held' });
    t.same(
      await c.reserve('u1', [day(3)], 'c'),
      { status: 'full', index: 0, used: 1, held: 2 },
      '1 committed + 2 held = 3',
    );
    await c.settle('u1', [day(3).key], 'a', [2]);
    t.same(await c.reserve('u1', [day(3)], 'c'), { status: 'full', index: 0, used: 2, held: 1 });
    await c.settle('u1', [day(3).key], 'b', [undefined]);
    t.same(await c.reserve('u1', [day(3)], 'c'), { status: 'held' }, 'a given-back hold frees its place');
    await c.settle('u1', [day(3).key], 'c', [3]);
    t.same(
      await c.reserve('u1', [day(3)], 'd'),
      { status: 'full', index: 0, used: 3, held: 0 },
      'held 0: a committed fact',
    );
    await c.settle('u1', [day(3).key], 'x', [1]);
    t.same(
      await c.reserve('u1', [day(3)], 'd'),
      { status: 'full', index: 0, used: 3, held: 0 },
      'a lower count never lowers it',
    );
    t.same(await c.reserve('u1', [day(5)], 'd'), { status: 'held' }, 'the cap is the one passed in (plan change)');
  });

  t.test(`${name}: several periods are checked and held together`, async (t) => {
    const c = make(30_000);
    t.same(await c.reserve('u2', [day(10), month(2)], 'a', [0, 1]), { status: 'held' });
    t.same(await c.reserve('u2', [day(10), month(2)], 'b'), { status: 'full', index: 1, used: 1, held: 1 });
    await c.settle('u2', [day(10).key, month(2).key], 'a', [undefined, undefined]);
    t.same(
      await c.reserve('u2', [day(1), month(5)], 'c'),
      { status: 'held' },
      'the refused call held nothing in the daily period',
    );
  });

  t.test(`${name}: a hold that is never settled lapses (a crashed process)`, async (t) => {
    const c = make(150);
    t.same(await c.reserve('u3', [day(1)], 'a', [0]), { status: 'held' });
    t.same((await c.reserve('u3', [day(1)], 'b')).status, 'full');
    await sleep(250);
    t.same(await c.reserve('u3', [day(1)], 'b'), { status: 'held' });
  });

  t.test(`${name}: settling a counter that is gone does not recreate it`, async (t) => {
    const c = make(30_000);
    await c.settle('u4', [day(3).key], 'a', [2]);
    t.same(await c.reserve('u4', [day(3)], 'b'), { status: 'missing' });
  });

  t.test(`${name}: a count recorded without a hold makes a missing counter, and only ever raises one`, async (t) => {
    const c = make(30_000);
    await c.record('u6', [day(3), month(10)], [1, 4]);
    t.same(await c.reserve('u6', [day(3), month(10)], 'a'), { status: 'held' }, 'no seed needed: 1 committed today');
    t.same(await c.reserve('u6', [day(3), month(10)], 'b'), { status: 'held' });
    t.same(await c.reserve('u6', [day(3), month(10)], 'c'), { status: 'full', index: 0, used: 1, held: 2 });
    await c.record('u6', [day(3)], [0]);
    t.same(
      await c.reserve('u6', [day(3), month(10)], 'c'),
      { status: 'full', index: 0, used: 1, held: 2 },
      'a lower count never lowers it',
    );
    await c.record('u6', [day(3)], [2]);
    t.same(await c.reserve('u6', [day(3), month(10)], 'c'), { status: 'full', index: 0, used: 2, held: 2 });
  });
}

t.test('redis: keys are per user slot and expire after the period', async (t) => {
  const p = `${prefix}ttl:`;
  const c = redisQuotaCounters(redis, p);
  await c.reserve('u5', [day(3)], 'a', [0]);
  const keys = (await redis.keys(`${p}*`)).sort();
  t.same(keys, [`${p}quota:{u5}:d:2026-11-25`, `${p}quota:{u5}:d:2026-11-25:h`]);
  for (const k of keys) {
    const ttl = await redis.ttl(k);
    t.ok(ttl > 3500 && ttl <= 3600, `${k} expires (ttl ${ttl})`);
  }
  await c.record('u7', [month(3)], [1]);
  const ttl = await redis.ttl(`${p}quota:{u7}:m:2026-11-01`);
  t.ok(ttl > 7100 && ttl <= 7200, `a recorded counter expires too (ttl ${ttl})`);
});
