// Days reset at midnight in the user's own time zone, with an injected clock: a user in New York and one in Tokyo
// both use up their basic quota at 2026-11-25T20:00Z (15:00 in New York, 05:00 the next day in Tokyo); each gets
// a fresh day at their own midnight, and not before.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { verifySignature } from '../../../src/nips/nip01.js';

let clock = Date.parse('2026-11-25T20:00:00Z') / 1000;
const setClock = (iso: string) => (clock = Date.parse(iso) / 1000);
const app = await startTestApp(t, { redis: true, now: () => clock });

let seq = 0;
async function publish(c: RawClient, k: Key): Promise<[boolean, string]> {
  return c.publish(buildEvent(k.sk, { created_at: clock, content: `note ${++seq}` }));
}

async function inZone(k: Key, timezone: string): Promise<string> {
  const user = await app.accounts.forPubkey(k.pk);
  await app.db.knex('users').where({ id: user.id }).update({ timezone });
  app.invalidation.account(k.pk);
  return user.id;
}

t.test('each user’s day ends at their own midnight', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const ny = newKey();
  const tokyo = newKey();
  const nyId = await inZone(ny, 'America/New_York');
  const tokyoId = await inZone(tokyo, 'Asia/Tokyo');

  for (let i = 0; i < 3; i++) {
    t.same(await publish(c, ny), [true, '']);
    t.same(await publish(c, tokyo), [true, '']);
  }
  t.same(await publish(c, ny), [false, 'rate-limited: daily limit of 3 posts reached on the basic plan; resets at 2026-11-26T05:00:00Z']);
  t.same(await publish(c, tokyo), [false, 'rate-limited: daily limit of 3 posts reached on the basic plan; resets at 2026-11-26T15:00:00Z']);

  setClock('2026-11-26T04:59:59Z'); // one second before midnight in New York
  t.equal((await publish(c, ny))[0], false, 'New York: still the same day');

  setClock('2026-11-26T05:00:00Z'); // midnight in New York, 14:00 in Tokyo
  t.same(await publish(c, ny), [true, ''], 'New York: a new day');
  t.same(await publish(c, tokyo), [false, 'rate-limited: daily limit of 3 posts reached on the basic plan; resets at 2026-11-26T15:00:00Z'], 'Tokyo: same day');

  setClock('2026-11-26T15:00:00Z'); // midnight in Tokyo
  t.same(await publish(c, tokyo), [true, ''], 'Tokyo: a new day');
  for (let i = 0; i < 2; i++) t.same(await publish(c, tokyo), [true, '']);
  t.same(await publish(c, tokyo), [false, 'rate-limited: daily limit of 3 posts reached on the basic plan; resets at 2026-11-27T15:00:00Z']);

  const days = async (userId: string) =>
    (await app.db.knex('user_quotas').where({ user_id: userId, quota_type: 'daily' }).orderBy('quota_date').select(app.db.knex.raw('quota_date::text AS day'), 'posts_used', app.db.knex.raw(`to_char(resets_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS resets`))) as unknown[];
  t.same(await days(nyId), [
    { day: '2026-11-25', posts_used: 3, resets: '2026-11-26T05:00:00Z' },
    { day: '2026-11-26', posts_used: 1, resets: '2026-11-27T05:00:00Z' },
  ]);
  t.same(await days(tokyoId), [
    { day: '2026-11-26', posts_used: 3, resets: '2026-11-26T15:00:00Z' },
    { day: '2026-11-27', posts_used: 3, resets: '2026-11-27T15:00:00Z' },
  ]);
});

t.test('an unknown time zone counts days in UTC', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  setClock('2026-11-27T10:00:00Z');
  const k = newKey();
  await inZone(k, 'Mars/Olympus_Mons');
  for (let i = 0; i < 3; i++) await publish(c, k);
  t.same(await publish(c, k), [false, 'rate-limited: daily limit of 3 posts reached on the basic plan; resets at 2026-11-28T00:00:00Z']);
});

t.test('one group commit holding posts from both sides of the user’s midnight charges each to its own day', async (t) => {
  // Drives the quota stages as a group commit does: each post is reserved when it is verified, and the batch is
  // charged in one transaction. Two posts reserved at 23:59:59 UTC and two at 00:00:00 meet in one batch.
  const k = newKey();
  const user = await app.accounts.forPubkey(k.pk);
  const stages = app.quota.stages;
  const verified = (created_at: number, content: string) => {
    const r = verifySignature(buildEvent(k.sk, { created_at, content }));
    if (!r.ok) throw new Error(r.rejection.message);
    return r.value;
  };
  setClock('2026-11-28T23:59:59Z');
  const before = [verified(clock, 'late 1'), verified(clock, 'late 2')];
  for (const ev of before) t.equal(await stages.reserveQuota(user, ev), undefined);
  setClock('2026-11-29T00:00:00Z');
  const after = [verified(clock, 'early 1'), verified(clock, 'early 2')];
  for (const ev of after) t.equal(await stages.reserveQuota(user, ev), undefined);

  const items = [before[0]!, after[0]!, before[1]!, after[1]!].map((ev) => ({ user, ev }));
  const refusals = await app.db.knex.transaction((trx) => stages.chargeQuotaBatch(trx, items));
  t.same(refusals, [undefined, undefined, undefined, undefined], 'all four fit: two on each day');
  const days = (await app.db.knex('user_quotas')
    .where({ user_id: user.id, quota_type: 'daily' })
    .orderBy('quota_date')
    .select(app.db.knex.raw('quota_date::text AS day'), 'posts_used')) as unknown[];
  t.same(days, [
    { day: '2026-11-28', posts_used: 2 },
    { day: '2026-11-29', posts_used: 2 },
  ]);
  // settled as admission would, so the Redis holds are confirmed
  for (const { ev } of items) stages.onSettled(user, ev, { status: 'accepted', eventId: ev.id, message: '' }, true, { via: 'relay', authed: new Set() });
});
