// The one-statement batch insert (store/event-batch.ts) on both databases the service runs on: rows, indexed
// tags, outbox rows and uncapped ledger counts together; ids already stored or deleted by their author skipped.
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { onBothDatabases } from '../helpers/db.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { deletedByAuthors, insertBatch, type BatchItem } from '../../src/store/event-batch.js';
import { NO_UPSTREAM, notForwarded } from '../../src/store/forwarding-plan.js';
import { ensureDefaultRelays } from '../../src/store/user-relays.js';
import { upsertUserByPubkey } from '../../src/store/users.js';

const extras = (userId: string) => ({ userId, dTag: null, expiresAt: undefined });
const charges = [{ type: 'daily' as const, date: '2026-11-25', resetsAt: '2026-11-26T00:00:00Z' }];

async function exercise(t: Test, db: Knex): Promise<void> {
  const k = newKey();
  const { user } = await upsertUserByPubkey(db, k.pk);
  const targets = await ensureDefaultRelays(db, user.id, ['wss://a.example/', 'wss://b.example/']);
  const tagged = buildEvent(k.sk, { content: 'tagged', tags: [['t', 'x'], ['p', k.pk]] });
  const plain = buildEvent(k.sk, { content: 'plain' });
  const items: BatchItem[] = [
    { ev: tagged, extras: extras(user.id), forwarding: { ...NO_UPSTREAM, targets }, charges },
    { ev: plain, extras: extras(user.id), forwarding: NO_UPSTREAM, charges },
  ];
  const first = await insertBatch(db, items);
  t.same([...first.rowIds.keys()].sort(), [tagged.id, plain.id].sort());
  t.same(first.totals, new Map([[`${user.id}:daily`, 2]]), 'both posts counted, one ledger row');
  t.same([...first.queued], [tagged.id], 'only the event with targets is queued');
  const tags = (await db('nostr_event_tags').where({ event_row_id: first.rowIds.get(tagged.id) }).orderBy('name').select('name', 'value')) as { name: string; value: string }[];
  t.same(tags, [{ name: 'p', value: k.pk }, { name: 't', value: 'x' }]);
  const outbox = (await db('relay_publishes').where({ event_id: first.rowIds.get(tagged.id) }).orderBy('relay_url').select('relay_url', 'status')) as { relay_url: string }[];
  t.same(outbox.map((r) => r.relay_url), ['wss://a.example/', 'wss://b.example/']);
  const rows = (await db('nostr_events').whereIn('event_id', [tagged.id, plain.id]).orderBy('content').select('content', 'status', 'total_relays', 'failure_reason')) as Record<string, unknown>[];
  t.match(rows, [
    { content: 'plain', status: 'published', total_relays: 0, failure_reason: 'not forwarded: no upstream relays are configured' },
    { content: 'tagged', status: 'publishing', total_relays: 2, failure_reason: null },
  ]);

  // again, with an event its author deleted: neither the copy nor the deleted one is stored or counted
  const doomed = buildEvent(k.sk, { content: 'doomed' });
  const deletion = buildEvent(k.sk, { kind: 5, tags: [['e', doomed.id]] });
  await insertBatch(db, [{ ev: deletion, extras: extras(user.id), forwarding: notForwarded('test') }]);
  const second = await insertBatch(db, [items[0]!, { ev: doomed, extras: extras(user.id), forwarding: { ...NO_UPSTREAM, targets }, charges }]);
  t.equal(second.rowIds.size, 0);
  t.equal(second.totals.size, 0, 'nothing stored, nothing counted');
  t.same([...(await deletedByAuthors(db, [tagged, doomed]))], [doomed.id]);
}

onBothDatabases(t, exercise);
