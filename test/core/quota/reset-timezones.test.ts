// Days reset at midnight in the user's own time zone, with an injected clock: a user in Bogotá and one in Tokyo
// both use up their basic quota at 20:00Z on day D, today (15:00 in Bogotá, 05:00 on D+1 in Tokyo); each gets a
// fresh day at their own midnight, and not before. Dates are relative to now, so the usage rows land in months whose
// partitions exist whatever day the test runs; both zones keep one UTC offset all year (Bogotá −5, Tokyo +9: no
// daylight saving time), so the expected instants do not depend on the season either.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { verifySignature } from '../../../src/nips/nip01.js';

const today = new Date();
/** Day D + n as YYYY-MM-DD (UTC), D being today. */
const day = (n: number) =>
  new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + n)).toISOString().slice(0, 10);
/** The instant at `time` (UTC) on day D + n, as the service writes it. */
const at = (n: number, time: string) => `${day(n)}T${time}Z`;
let clock = Date.parse(at(0, '20:00:00')) / 1000;
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
  const bogota = newKey();
  const tokyo = newKey();
  const bogotaId = await inZone(bogota, 'America/Bogota');
  const tokyoId = await inZone(tokyo, 'Asia/Tokyo');

  for (let i = 0; i < 3; i++) {
    t.same(await publish(c, bogota), [true, '']);
    t.same(await publish(c, tokyo), [true, '']);
  }
  t.same(await publish(c, bogota), [
    false,
    `rate-limited: daily limit of 3 posts reached on the basic plan; resets at ${at(1, '05:00:00')}`,
  ]);
  t.same(await publish(c, tokyo), [
    false,
    `rate-limited: daily limit of 3 posts reached on the basic plan; resets at ${at(1, '15:00:00')}`,
  ]);

  setClock(at(1, '04:59:59')); // one second before midnight in Bogotá
  t.equal((await publish(c, bogota))[0], false, 'Bogotá: still the same day');

  setClock(at(1, '05:00:00')); // midnight in Bogotá, 14:00 in Tokyo
  t.same(await publish(c, bogota), [true, ''], 'Bogotá: a new day');
  t.same(
    await publish(c, tokyo),
    [false, `rate-limited: daily limit of 3 posts reached on the basic plan; resets at ${at(1, '15:00:00')}`],
    'Tokyo: same day',
  );

  setClock(at(1, '15:00:00')); // midnight in Tokyo
  t.same(await publish(c, tokyo), [true, ''], 'Tokyo: a new day');
  for (let i = 0; i < 2; i++) t.same(await publish(c, tokyo), [true, '']);
  t.same(await publish(c, tokyo), [
    false,
    `rate-limited: daily limit of 3 posts reached on the basic plan; resets at ${at(2, '15:00:00')}`,
  ]);

  const days = async (userId: string) =>
    (await app.db
      .knex('user_quotas')
      .where({ user_id: userId, quota_type: 'daily' })
      .orderBy('quota_date')
      .select(
        app.db.knex.raw('quota_date::text AS day'),
        'posts_used',
        app.db.knex.raw(`to_char(resets_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS resets`),
      )) as unknown[];
  t.same(await days(bogotaId), [
    { day: day(0), posts_used: 3, resets: at(1, '05:00:00') },
    { day: day(1), posts_used: 1, resets: at(2, '05:00:00') },
  ]);
  t.same(await days(tokyoId), [
    { day: day(1), posts_used: 3, resets: at(1, '15:00:00') },
    { day: day(2), posts_used: 3, resets: at(2, '15:00:00') },
  ]);
});

t.test('an unknown time zone counts days in UTC', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  setClock(at(2, '10:00:00'));
  const k = newKey();
  await inZone(k, 'Mars/Olympus_Mons');
  for (let i = 0; i < 3; i++) await publish(c, k);
  t.same(await publish(c, k), [
    false,
    `rate-limited: daily limit of 3 posts reached on the basic plan; resets at ${at(3, '00:00:00')}`,
  ]);
});

t.test(
  'one group commit holding posts from both sides of the user’s midnight charges each to its own day',
  async (t) => {
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
    setClock(at(3, '23:59:59'));
    const before = [verified(clock, 'late 1'), verified(clock, 'late 2')];
    for (const ev of before) t.equal(await stages.reserveQuota(user, ev), undefined);
    setClock(at(4, '00:00:00'));
    const after = [verified(clock, 'early 1'), verified(clock, 'early 2')];
    for (const ev of after) t.equal(await stages.reserveQuota(user, ev), undefined);

    const items = [before[0]!, after[0]!, before[1]!, after[1]!].map((ev) => ({ user, ev }));
    const refusals = await app.db.knex.transaction((trx) => stages.chargeQuotaBatch(trx, items));
    t.same(refusals, [undefined, undefined, undefined, undefined], 'all four fit: two on each day');
    const days = (await app.db
      .knex('user_quotas')
      .where({ user_id: user.id, quota_type: 'daily' })
      .orderBy('quota_date')
      .select(app.db.knex.raw('quota_date::text AS day'), 'posts_used')) as unknown[];
    t.same(days, [
      { day: day(3), posts_used: 2 },
      { day: day(4), posts_used: 2 },
    ]);
    // settled as admission would, so the Redis holds are confirmed
    for (const { ev } of items)
      stages.onSettled(user, ev, { status: 'accepted', eventId: ev.id, message: '' }, true, {
        via: 'relay',
        authed: new Set(),
      });
  },
);
