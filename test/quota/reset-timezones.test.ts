// Days reset at midnight in the user's own time zone, with an injected clock: a user in New York and one in Tokyo
// both use up their basic quota at 2026-11-25T20:00Z (15:00 in New York, 05:00 the next day in Tokyo); each gets
// a fresh day at their own midnight, and not before.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';

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
