// Each user's own retention period (users.data_retention_days, core/ops/user-retention.ts), on PostgreSQL and PGlite,
// with the clock of the run moved ahead instead of rows backdated: what a user's period covers (their events with
// tags and per-relay results, usage events, ended sessions) goes once older than it, and nothing else does: not
// other users' rows, not a live session, not payments nor audit rows. A user who shortens the period loses the older
// rows at the next run; a user with 0 keeps everything however old. Then the real service: PATCH /v1/me sets the
// period, GET /v1/me and the export say what it covers.
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { onBothDatabases } from '../../helpers/db.js';
import { ApiClient } from '../../helpers/api.js';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { insertBatch } from '../../../src/store/event-batch.js';
import { NO_UPSTREAM } from '../../../src/store/forwarding-plan.js';
import { insertSession } from '../../../src/store/sessions.js';
import { addUserRelay } from '../../../src/store/user-relays.js';
import { upsertUserByPubkey } from '../../../src/store/users.js';
import { writeAudit } from '../../../src/store/audit.js';
import { applyUserRetention } from '../../../src/core/ops/user-retention.js';

const DAY = 86_400;
const now = Math.floor(Date.now() / 1000);

interface Held {
  events: number;
  tags: number;
  publishes: number;
  usage: number;
  sessions: number;
}

/** A user with one of everything the retention period covers, plus a live session; returns their id. */
async function userWithActivity(db: Knex, days: number): Promise<string> {
  const { user } = await upsertUserByPubkey(db, newKey().pk);
  await db('users').where({ id: user.id }).update({ data_retention_days: days });
  const added = await addUserRelay(db, user.id, { url: 'wss://up.example/' }, { max: 10 });
  if (added.status !== 'added') throw new Error('setup');
  const ev = buildEvent(newKey().sk, { tags: [['t', 'kept-or-not']] });
  await insertBatch(db, [
    {
      ev,
      extras: { userId: user.id, dTag: null, expiresAt: undefined },
      forwarding: { ...NO_UPSTREAM, targets: [{ userRelayId: added.relay.id, url: 'wss://up.example/' }] },
    },
  ]);
  await db('usage_events').insert({
    user_id: user.id,
    event_type: 'quota_usage',
    event_action: 'post',
    occurred_at: new Date(now * 1000),
  });
  await insertSession(db, user.id, `${user.id.replace(/-/g, '')}0ended`, new Date(now * 1000), { extensionId: 'api' });
  await insertSession(db, user.id, `${user.id.replace(/-/g, '')}00live`, new Date((now + 100_000 * DAY) * 1000), {
    extensionId: 'api',
  });
  return user.id;
}

async function held(db: Knex, userId: string): Promise<Held> {
  const count = async (q: Knex.QueryBuilder) => Number(((await q.count({ n: '*' })) as { n: string | number }[])[0]!.n);
  const rows = db('nostr_events').select('id').where({ user_id: userId });
  return {
    events: await count(db('nostr_events').where({ user_id: userId })),
    tags: await count(db('nostr_event_tags').whereIn('event_row_id', rows.clone())),
    publishes: await count(db('relay_publishes').whereIn('event_id', rows.clone())),
    usage: await count(db('usage_events').where({ user_id: userId })),
    sessions: await count(db('user_sessions').where({ user_id: userId })),
  };
}

const all: Held = { events: 1, tags: 1, publishes: 1, usage: 1, sessions: 2 };
const erased: Held = { events: 0, tags: 0, publishes: 0, usage: 0, sessions: 1 };

async function exercise(t: Test, db: Knex): Promise<void> {
  const standard = await userWithActivity(db, 90);
  const short = await userWithActivity(db, 30);
  const keepsAll = await userWithActivity(db, 0);
  const shortener = await userWithActivity(db, 90);
  await db('payments').insert({
    user_id: short,
    amount: '4.99',
    status: 'succeeded',
    created_at: new Date(now * 1000),
  });
  await writeAudit(db, {
    table: 'users',
    operation: 'UPDATE',
    userId: short,
    newValues: { plan: 'premium' },
    actor: 'test',
  });

  t.same(await applyUserRetention(db, now), { events: 0, usageEvents: 0, sessions: 0 }, 'today nothing is old enough');

  const in40days = await applyUserRetention(db, now + 40 * DAY);
  t.same(in40days, { events: 1, usageEvents: 1, sessions: 1 }, 'after 40 days: the 30-day user only');
  t.same(
    await held(db, short),
    erased,
    'their event with its tags and per-relay results, their usage, their ended session; the live session stays',
  );
  t.same(
    [await held(db, standard), await held(db, keepsAll), await held(db, shortener)],
    [all, all, all],
    'the others keep everything',
  );
  t.equal(
    Number((await db('payments').where({ user_id: short }).count({ n: '*' }))[0]!.n),
    1,
    'payments are never erased',
  );
  t.equal(Number((await db('audit_log').where({ user_id: short }).count({ n: '*' }))[0]!.n), 1, 'nor audit rows');

  await db('users').where({ id: shortener }).update({ data_retention_days: 10 });
  t.same(
    await applyUserRetention(db, now + 40 * DAY),
    { events: 1, usageEvents: 1, sessions: 1 },
    'a user who shortens the period: the older data goes at the next run',
  );
  t.same(await held(db, shortener), erased);

  t.same(
    await applyUserRetention(db, now + 91 * DAY),
    { events: 1, usageEvents: 1, sessions: 1 },
    'after 91 days the default 90-day user',
  );
  t.same(await held(db, standard), erased);
  t.same(
    await applyUserRetention(db, now + 10_000 * DAY),
    { events: 0, usageEvents: 0, sessions: 0 },
    '0 keeps everything, however old',
  );
  t.same(await held(db, keepsAll), all);
}

t.test("each user's retention period", async (t) => onBothDatabases(t, exercise));

t.test('PATCH /v1/me sets the period; GET /v1/me and the export say what it covers', async (t) => {
  const app = await startTestApp(t);
  const api = new ApiClient(app.url);
  const alice = newKey();
  const me = await api.signed(alice, 'GET', '/v1/me');
  t.match(
    me.body,
    { data_retention_days: 90, data_retention: { days: 90, summary: /older than 90 days, checked hourly/ } },
    'the default is 90 days',
  );
  const erasedTables = me.body.data_retention.erased.map((e: { table: string }) => e.table);
  t.same(erasedTables, ['nostr_events', 'nostr_event_tags', 'relay_publishes', 'usage_events', 'user_sessions']);
  const keptTables = me.body.data_retention.kept.map((e: { table: string }) => e.table);
  t.ok(
    ['payments', 'audit_log', 'upstream relays'].every((k) => keptTables.includes(k)),
    'payments, audit rows and the copies on other relays are kept',
  );

  const zero = await api.signed(alice, 'PATCH', '/v1/me', { body: { data_retention_days: 0 } });
  t.match(zero.body, { data_retention_days: 0, data_retention: { days: 0, summary: /nothing is erased by age/ } });
  const bad = await api.signed(alice, 'PATCH', '/v1/me', { body: { data_retention_days: -1 } });
  t.match([bad.status, bad.body.error], [400, { code: 'validation_failed', field: 'data_retention_days' }]);
  t.match((await api.signed(alice, 'PATCH', '/v1/me', { body: { data_retention_days: 30 } })).body, {
    data_retention_days: 30,
  });

  const exported = await api.signed(alice, 'GET', '/v1/me/export');
  t.equal(exported.status, 200);
  t.match(
    exported.body.data_retention,
    { days: 30, erased: [{ table: 'nostr_events' }] },
    'the export says which of its tables the period erases',
  );
  t.ok(Array.isArray(exported.body.tables.nostr_events));
});
