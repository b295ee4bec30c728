// The user_quotas ledger (store/quotas.ts), the arbiter: concurrent transactions can never take it past the
// limit, the limit passed in is the one that applies, and the same SQL runs on the embedded database (PGlite).
import t from 'tap';
import type { Knex } from 'knex';
import { createTestDatabase, createTestPglite } from '../helpers/db.js';
import { chargePost, readUsage, type LedgerPeriod } from '../../src/store/quotas.js';
import { upsertUserByPubkey } from '../../src/store/users.js';
import { newKey } from '../helpers/events.js';

const db = await createTestDatabase(t);

const day = (limit: number): LedgerPeriod => ({ type: 'daily', date: '2026-11-25', limit, resetsAt: '2026-11-26T00:00:00Z' });
const month = (limit: number): LedgerPeriod => ({ type: 'monthly', date: '2026-11-01', limit, resetsAt: '2026-12-01T00:00:00Z' });

async function newUser(knex: Knex): Promise<string> {
  return (await upsertUserByPubkey(knex, newKey().pk)).user.id;
}

/** One transaction per call, as admission does; a refusal rolls back like admission's QuotaRollback. */
async function charge(knex: Knex, userId: string, periods: LedgerPeriod[]): Promise<boolean> {
  try {
    return await knex.transaction(async (trx) => {
      const r = await chargePost(trx, userId, periods);
      if (!r.ok) throw new Error('refused');
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
  const refused = await db.knex.transaction(async (trx) => chargePost(trx, userId, [day(3)]));
  t.same(refused, { ok: false, period: day(3), used: 5 }, 'a downgrade below the count refuses, reporting the count');
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

t.test('the same statements run on the embedded database (PGlite)', async (t) => {
  const pglite = await createTestPglite(t);
  const userId = await newUser(pglite.knex);
  const results = await Promise.all(Array.from({ length: 6 }, () => charge(pglite.knex, userId, [day(3), month(10)])));
  t.equal(results.filter(Boolean).length, 3);
  t.same(await readUsage(pglite.knex, userId, [day(3), month(10)]), { daily: 3, monthly: 3 });
});
