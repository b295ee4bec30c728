// Which relays a stored event is queued for (store/forwarding-plan.ts): the user's own active write relays when
// their plan allows them and they have any, else the planned default relays; a not-forwarded event gets no row and
// says why. The rule is applied in SQL by both paths that store events, the group-commit statement (insertBatch)
// and the one-event path (enqueuePlanned): every case is run through both, on both databases.
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { onBothDatabases } from '../helpers/db.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { insertBatch } from '../../src/store/event-batch.js';
import { saveEvent } from '../../src/store/events.js';
import { NO_UPSTREAM, enqueuePlanned, notForwarded, type Forwarding } from '../../src/store/forwarding-plan.js';
import { addUserRelay, ensureDefaultRelays, updateUserRelay } from '../../src/store/user-relays.js';
import { upsertUserByPubkey } from '../../src/store/users.js';

const DEFAULTS = ['wss://default-a.example/', 'wss://default-b.example/'];

interface Outcome {
  readonly queued: boolean;
  readonly urls: string[];
  readonly row: { status: string; total_relays: number; failure_reason: string | null };
}

type Store = (db: Knex, userId: string, plan: Forwarding) => Promise<Outcome>;

async function outcomeOf(db: Knex, rowId: string, queued: boolean): Promise<Outcome> {
  const urls = (
    (await db('relay_publishes').where({ event_id: rowId }).orderBy('relay_url').select('relay_url')) as {
      relay_url: string;
    }[]
  ).map((r) => r.relay_url);
  const row = (await db('nostr_events')
    .where({ id: rowId })
    .first('status', 'total_relays', 'failure_reason')) as Outcome['row'];
  return { queued, urls, row };
}

const byBatch: Store = async (db, userId, plan) => {
  const ev = buildEvent(newKey().sk, { content: 'batch' });
  const w = await insertBatch(db, [{ ev, extras: { userId, dTag: null, expiresAt: undefined }, forwarding: plan }]);
  return outcomeOf(db, w.rowIds.get(ev.id)!, w.queued.has(ev.id));
};

const oneByOne: Store = async (db, userId, plan) => {
  const ev = buildEvent(newKey().sk, { kind: 30023, tags: [['d', 'x']], content: 'one' });
  const { rowId, queued } = await db.transaction(async (trx) => {
    const saved = await saveEvent(trx, ev, { userId, dTag: 'x', expiresAt: undefined });
    if (saved.status !== 'inserted') throw new Error(`setup: ${saved.status}`);
    return {
      rowId: saved.rowId,
      queued: await enqueuePlanned(trx, { rowId: saved.rowId, eventId: ev.id, userId }, plan),
    };
  });
  return outcomeOf(db, rowId, queued);
};

async function exercise(t: Test, db: Knex): Promise<void> {
  const newUser = async () => (await upsertUserByPubkey(db, newKey().pk)).user.id;
  // a user with own relays: two active write relays, one inactive, one read-only
  const withOwn = await newUser();
  for (const url of [
    'wss://own-1.example/',
    'wss://own-2.example/',
    'wss://off.example/',
    'wss://read-only.example/',
  ]) {
    const added = await addUserRelay(db, withOwn, { url, write: url !== 'wss://read-only.example/' }, { max: 10 });
    if (added.status !== 'added') throw new Error('setup');
    if (url === 'wss://off.example/')
      await updateUserRelay(db, withOwn, added.relay.id, { isActive: false }, { max: 10 });
  }
  const without = await newUser();
  const defaultsOf = async (u: string) => ({ ...NO_UPSTREAM, targets: await ensureDefaultRelays(db, u, DEFAULTS) });

  for (const [name, store] of [
    ['group commit', byBatch],
    ['one by one', oneByOne],
  ] as const) {
    const own = await store(db, withOwn, { ...(await defaultsOf(withOwn)), ownRelaysFirst: true });
    t.same(
      own.urls,
      ['wss://own-1.example/', 'wss://own-2.example/'],
      `${name}: own active write relays instead of the defaults`,
    );
    t.match(own, { queued: true, row: { status: 'publishing', total_relays: 2, failure_reason: null } });

    const notAllowed = await store(db, withOwn, await defaultsOf(withOwn));
    t.same(notAllowed.urls, DEFAULTS, `${name}: the defaults when the plan does not allow own relays`);

    const noOwn = await store(db, without, { ...(await defaultsOf(without)), ownRelaysFirst: true });
    t.same(noOwn.urls, DEFAULTS, `${name}: the defaults for a user without own relays`);

    const nowhere = await store(db, without, { ...NO_UPSTREAM, ownRelaysFirst: true });
    t.same(nowhere.urls, [], `${name}: no own relays and no defaults`);
    t.match(nowhere, {
      queued: false,
      row: { status: 'published', total_relays: 0, failure_reason: 'not forwarded: no upstream relays are configured' },
    });

    const held = await store(db, withOwn, notForwarded('the event is protected (NIP-70)'));
    t.same(held.urls, [], `${name}: a not-forwarded event goes nowhere, own relays or not`);
    t.match(held.row, {
      status: 'published',
      total_relays: 0,
      failure_reason: 'not forwarded: the event is protected (NIP-70)',
    });
  }
}

onBothDatabases(t, exercise);
