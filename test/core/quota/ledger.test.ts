// The user_quotas ledger (store/quotas.ts), the arbiter: concurrent transactions can never take it past the
// limit, a batch's posts of one user take what room is left in order, concurrent batches over the same users in
// different orders never deadlock, the limit passed in is the one that applies, and the same SQL runs on the
// embedded database (PGlite).
import t from 'tap';
import type { Knex } from 'knex';
import { createTestDatabase, createTestPglite } from '../../helpers/db.js';
import { chargePosts, readUsage, type LedgerPeriod, type PostChargeResult } from '../../../src/store/quotas.js';
import { upsertUserByPubkey } from '../../../src/store/users.js';
import { newKey } from '../../helpers/events.js';

const db = await createTestDatabase(t);

const day = (limit: number): LedgerPeriod => ({
  type: 'daily',
  date: '2026-11-25',
  limit,
  resetsAt: '2026-11-26T00:00:00Z',
});
const month = (limit: number): LedgerPeriod => ({
  type: 'monthly',
  date: '2026-11-01',
  limit,
  resetsAt: '2026-12-01T00:00:00Z',
});

async function newUser(knex: Knex): Promise<string> {
  return (await upsertUserByPubkey(knex, newKey().pk)).user.id;
}

/** One post in a transaction of its own, as admission does for one event; a refusal rolls back. */
async function charge(knex: Knex, userId: string, periods: LedgerPeriod[]): Promise<boolean> {
  try {
    return await knex.transaction(async (trx) => {
      const r = (await chargePosts(trx, [{ userId, periods, n: 1 }])).get(userId)!;
      if (r.taken === 0) throw new Error('refused');
      return true;
    });
  } catch (err) {
    if ((err as Error).message === 'refused') return false;
    throw err;
  }
}

t.test('60 concurrent charges against a limit of 3: exactly 3 succeed', async (t) => {
  const userId = await newUser(db.knex);
  const results = await Promise.all(Array.from({ length: 60 }, () => charge(db.knex, userId, [day(3)])));
  t.equal(results.filter(Boolean).length, 3);
  t.same(await readUsage(db.knex, userId, [day(3)]), { daily: 3, monthly: 0 });
});

t.test('a refused monthly period rolls back the daily charge made in the same transaction', async (t) => {
  const userId = await newUser(db.knex);
  const results = await Promise.all(Array.from({ length: 30 }, () => charge(db.knex, userId, [day(-1), month(5)])));
  t.equal(results.filter(Boolean).length, 5);
  t.same(await readUsage(db.knex, userId, [day(-1), month(5)]), { daily: 5, monthly: 5 });
});

t.test('the limit passed in applies to what is already counted (plan changes mid-day)', async (t) => {
  const userId = await newUser(db.knex);
  for (let i = 0; i < 5; i++) t.ok(await charge(db.knex, userId, [day(25)]));
  const refused = await db.knex.transaction(async (trx) =>
    (await chargePosts(trx, [{ userId, periods: [day(3)], n: 1 }])).get(userId),
  );
  t.same(
    refused,
    { taken: 0, before: { daily: 5 }, refusedBy: day(3) },
    'a downgrade below the count refuses, reporting the count',
  );
  t.ok(await charge(db.knex, userId, [day(-1)]), 'unlimited accepts');
  t.ok(await charge(db.knex, userId, [day(7)]));
  t.notOk(await charge(db.knex, userId, [day(7)]));
  const row = await db.knex('user_quotas').where({ user_id: userId }).first('posts_used', 'posts_limit');
  t.same(row, { posts_used: 7, posts_limit: 7 }, 'the row records the limit of its last charge');
});

t.test('a limit of 0 allows nothing and creates no row', async (t) => {
  const userId = await newUser(db.knex);
  t.notOk(await charge(db.knex, userId, [day(0)]));
  t.equal((await db.knex('user_quotas').where({ user_id: userId })).length, 0);
});

t.test('a batch: each user takes what fits under the smallest room left, in one call', async (t) => {
  const [fresh, twoUsed, unlimitedDaily, full] = await Promise.all([1, 2, 3, 4].map(() => newUser(db.knex)));
  for (let i = 0; i < 2; i++) await charge(db.knex, twoUsed!, [day(3)]);
  for (let i = 0; i < 3; i++) await charge(db.knex, full!, [day(3)]);
  const results = await db.knex.transaction(async (trx) =>
    chargePosts(trx, [
      { userId: fresh!, periods: [day(3)], n: 2 },
      { userId: twoUsed!, periods: [day(3)], n: 5 },
      { userId: unlimitedDaily!, periods: [day(-1), month(4)], n: 6 },
      { userId: full!, periods: [day(3)], n: 1 },
    ]),
  );
  const expected: [string, PostChargeResult][] = [
    [fresh!, { taken: 2, before: { daily: 0 } }],
    [twoUsed!, { taken: 1, before: { daily: 2 }, refusedBy: day(3) }],
    [unlimitedDaily!, { taken: 4, before: { daily: 0, monthly: 0 }, refusedBy: month(4) }],
    [full!, { taken: 0, before: { daily: 3 }, refusedBy: day(3) }],
  ];
  for (const [userId, r] of expected) t.same(results.get(userId), r);
  t.same(await readUsage(db.knex, fresh!, [day(3)]), { daily: 2, monthly: 0 });
  t.same(await readUsage(db.knex, twoUsed!, [day(3)]), { daily: 3, monthly: 0 });
  t.same(
    await readUsage(db.knex, unlimitedDaily!, [day(-1), month(4)]),
    { daily: 4, monthly: 4 },
    'both periods count what was taken',
  );
  t.same(await readUsage(db.knex, full!, [day(3)]), { daily: 3, monthly: 0 });
});

t.test(
  'concurrent batches over the same users, given in different orders: no deadlock, no count past a limit',
  async (t) => {
    const users = await Promise.all(Array.from({ length: 8 }, () => newUser(db.knex)));
    const batches = Array.from({ length: 24 }, (_, b) => {
      const order = b % 2 === 0 ? users : [...users].reverse();
      return db.knex.transaction(async (trx) =>
        chargePosts(
          trx,
          order.map((userId) => ({ userId, periods: [day(10), month(25)], n: 2 })),
        ),
      );
    });
    const results = await Promise.all(batches);
    for (const userId of users) {
      const taken = results.reduce((n, r) => n + r.get(userId)!.taken, 0);
      t.equal(taken, 10, 'exactly the daily limit was taken over all batches');
      t.same(await readUsage(db.knex, userId, [day(10), month(25)]), { daily: 10, monthly: 10 });
    }
  },
);

t.test('the same statements run on the embedded database (PGlite)', async (t) => {
  const pglite = await createTestPglite(t);
  const userId = await newUser(pglite.knex);
  const results = await Promise.all(Array.from({ length: 6 }, () => charge(pglite.knex, userId, [day(3), month(10)])));
  t.equal(results.filter(Boolean).length, 3);
  t.same(await readUsage(pglite.knex, userId, [day(3), month(10)]), { daily: 3, monthly: 3 });
});
