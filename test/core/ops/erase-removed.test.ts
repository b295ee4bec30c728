// Events taken out of the served set are erased once REMOVED_EVENTS_RETENTION_DAYS old (core/ops/maintenance.ts
// eraseRemovedEvents): deleted, replaced and expired rows go with their tags and per-relay results; a ban's
// removals, recent removals and live rows stay. Nothing a client sees changes: through a real client, a deleted
// event published again is still refused and an older version of a replaced one is still superseded, since the
// deletion event and the newer version stay.
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { Relay } from 'nostr-tools/relay';
import { createTestDatabaseUrl, onBothDatabases } from '../../helpers/db.js';
import { startTestApp } from '../../helpers/app.js';
import { storedEvents } from '../../helpers/stored-events.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { insertBatch } from '../../../src/store/event-batch.js';
import { NO_UPSTREAM } from '../../../src/store/forwarding-plan.js';
import { addUserRelay } from '../../../src/store/user-relays.js';
import { upsertUserByPubkey } from '../../../src/store/users.js';
import { eraseRemovedEvents } from '../../../src/core/ops/maintenance.js';

const DAY = 86_400;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Stores a kind-1 event with one indexed tag and one outbox row; returns its row id. */
async function stored(db: Knex, userId: string, relayId: string): Promise<string> {
  const ev = buildEvent(newKey().sk, { tags: [['t', 'erase']] });
  const w = await insertBatch(db, [
    {
      ev,
      extras: { userId, dTag: null, expiresAt: undefined },
      forwarding: { ...NO_UPSTREAM, targets: [{ userRelayId: relayId, url: 'wss://up.example/' }] },
    },
  ]);
  return w.rowIds.get(ev.id)!;
}

async function removeAgo(db: Knex, rowId: string, reason: string, days: number): Promise<void> {
  await db('nostr_events')
    .where({ id: rowId })
    .update({ removed_at: new Date((nowSeconds() - days * DAY) * 1000), removed_reason: reason });
}

async function exercise(t: Test, db: Knex): Promise<void> {
  const { user } = await upsertUserByPubkey(db, newKey().pk);
  const added = await addUserRelay(db, user.id, { url: 'wss://up.example/' }, { max: 10 });
  if (added.status !== 'added') throw new Error('setup');
  const relayId = added.relay.id;
  const rows: Record<string, string> = {};
  for (const name of ['live', 'deletedOld', 'replacedOld', 'expiredOld', 'bannedOld', 'deletedRecent'])
    rows[name] = await stored(db, user.id, relayId);
  await removeAgo(db, rows.deletedOld!, 'deleted', 31);
  await removeAgo(db, rows.replacedOld!, 'replaced', 40);
  await removeAgo(db, rows.expiredOld!, 'expired', 365);
  await removeAgo(db, rows.bannedOld!, 'banned', 365);
  await removeAgo(db, rows.deletedRecent!, 'deleted', 29);

  t.equal(await eraseRemovedEvents(db, 0, nowSeconds()), 0, '0 days keeps everything');
  t.equal(
    await eraseRemovedEvents(db, 30, nowSeconds()),
    3,
    'the deleted, replaced and expired rows removed over 30 days ago',
  );
  const left = ((await db('nostr_events').select('id')) as { id: string }[]).map((r) => r.id).sort();
  t.same(
    left,
    [rows.live!, rows.bannedOld!, rows.deletedRecent!].sort(),
    'live, banned and recently removed rows stay',
  );
  const tagRows = (await db('nostr_event_tags').select('event_row_id')) as { event_row_id: string }[];
  t.same(new Set(tagRows.map((r) => r.event_row_id)), new Set(left), 'the erased rows took their tags');
  const outboxRows = (await db('relay_publishes').select('event_id')) as { event_id: string }[];
  t.same(new Set(outboxRows.map((r) => r.event_id)), new Set(left), 'and their per-relay results');
  t.equal(await eraseRemovedEvents(db, 30, nowSeconds()), 0, 'a second run finds nothing');
}

t.test('the rows erased and the rows kept', async (t) => onBothDatabases(t, exercise));

t.test(
  'through a real client nothing changes: a deleted event stays refused, an older version stays superseded',
  async (t) => {
    const databaseUrl = await createTestDatabaseUrl(t);
    const first = await startTestApp(t, { databaseUrl, plans: { basic: { daily: -1 } } });
    const alice = newKey();
    const publisher = await Relay.connect(first.relayUrl);
    t.teardown(() => publisher.close());
    const note = buildEvent(alice.sk, { content: 'to be deleted' });
    const profileV1 = buildEvent(alice.sk, { kind: 0, content: '{"name":"alice one"}', created_at: nowSeconds() - 10 });
    const profileV2 = buildEvent(alice.sk, { kind: 0, content: '{"name":"alice two"}' });
    for (const ev of [note, profileV1, profileV2]) await publisher.publish(ev);
    const deletion = buildEvent(alice.sk, { kind: 5, tags: [['e', note.id]] });
    await publisher.publish(deletion);

    // the removals happened 31 days ago; the events come back to a process that has not seen them (a restart, or
    // another instance), so its answers come from the database, not from its memory of recent ids
    const app = await startTestApp(t, { databaseUrl, plans: { basic: { daily: -1 } } });
    const relay = await Relay.connect(app.relayUrl);
    t.teardown(() => relay.close());
    const knex = app.db.knex;
    await knex('nostr_events')
      .whereIn('event_id', [note.id, profileV1.id])
      .update({ removed_at: new Date((nowSeconds() - 31 * DAY) * 1000) });
    t.equal(
      await eraseRemovedEvents(knex, app.config.removedEventsRetentionDays, nowSeconds()),
      2,
      'the deleted note and the replaced profile are erased (default 30 days)',
    );
    t.equal(
      Number((await knex('nostr_events').whereIn('event_id', [note.id, profileV1.id]).count({ n: '*' }))[0]!.n),
      0,
    );

    await t.rejects(relay.publish(note), /^blocked: .*deleted/, 'the deleted note published again is still refused');
    t.match(await relay.publish(profileV1), /^duplicate: a newer version/, 'the older profile is still superseded');
    const served = await storedEvents(relay, { authors: [alice.pk] });
    t.same(served.map((e) => e.id).sort(), [profileV2.id, deletion.id].sort(), 'what is served is unchanged');
  },
);
