// The user_relays store API the relay settings (POST/PATCH/DELETE /v1/relays) are built on, the NIP-65 update, the
// per-user rows of the operator's default relays, and the plan rule.
import t from 'tap';
import type { Knex } from 'knex';
import { createTestDatabase } from '../../helpers/db.js';
import { newKey } from '../../helpers/events.js';
import { subscribeUser } from '../../helpers/forwarding.js';
import {
  addUserRelay,
  deleteUserRelay,
  ensureDefaultRelays,
  getUserRelay,
  listUserRelays,
  replaceNip65Relays,
  updateUserRelay,
} from '../../../src/store/user-relays.js';
import { addOwnRelay, applyRelayList } from '../../../src/core/forwarding/relay-targets.js';
import { createPlans } from '../../../src/core/quota/plans.js';

const database = await createTestDatabase(t);
const db = database.knex;

async function newUser(plan?: string): Promise<string> {
  const { pk } = newKey();
  if (plan) return subscribeUser(db, pk, plan);
  const [row] = (await db('users').insert({ nostr_public_key: pk }).returning('id')) as { id: string }[];
  return row!.id;
}

const inTrx = <T>(fn: (trx: Knex.Transaction) => Promise<T>) => db.transaction(fn);

t.test('addUserRelay adds a relay of the user own, says when it exists, and refuses past the cap', async (t) => {
  const user = await newUser('premium');
  const a = await addUserRelay(db, user, { url: 'wss://a.example/', name: 'A' }, { max: 2 });
  t.match(a, {
    status: 'added',
    relay: {
      url: 'wss://a.example/',
      name: 'A',
      source: 'api',
      isActive: true,
      read: true,
      write: true,
      isDefault: false,
    },
  });
  t.match(await addUserRelay(db, user, { url: 'wss://a.example/' }, { max: 2 }), { status: 'exists' });
  t.match(await addUserRelay(db, user, { url: 'wss://b.example/', read: false }, { max: 2 }), {
    status: 'added',
    relay: { read: false },
  });
  t.same(await addUserRelay(db, user, { url: 'wss://c.example/' }, { max: 2 }), { status: 'limit', limit: 2 });
  t.same(
    (await listUserRelays(db, user)).map((r) => r.url),
    ['wss://a.example/', 'wss://b.example/'],
  );
});

t.test('concurrent adds never pass the cap', async (t) => {
  const user = await newUser('premium');
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => addUserRelay(db, user, { url: `wss://r${i}.example/` }, { max: 3 })),
  );
  t.equal(results.filter((r) => r.status === 'added').length, 3);
  t.equal(results.filter((r) => r.status === 'limit').length, 5);
});

t.test(
  'updateUserRelay changes flags, refuses to reactivate past the cap, and knows only the user own rows',
  async (t) => {
    const user = await newUser('premium');
    const other = await newUser('premium');
    const a = await addUserRelay(db, user, { url: 'wss://a.example/' }, { max: 1 });
    if (a.status !== 'added') throw new Error('setup');
    t.match(await updateUserRelay(db, user, a.relay.id, { isActive: false, name: 'off', write: false }, { max: 1 }), {
      status: 'updated',
      relay: { isActive: false, name: 'off', write: false },
    });
    t.match(await addUserRelay(db, user, { url: 'wss://b.example/' }, { max: 1 }), { status: 'added' });
    t.same(await updateUserRelay(db, user, a.relay.id, { isActive: true }, { max: 1 }), { status: 'limit', limit: 1 });
    t.same(await updateUserRelay(db, other, a.relay.id, { name: 'x' }, { max: 1 }), { status: 'not_found' });
    t.same(await updateUserRelay(db, user, 'not-a-uuid', { name: 'x' }, { max: 1 }), { status: 'not_found' });
    t.equal((await getUserRelay(db, user, a.relay.id))?.name, 'off');
    t.equal(await getUserRelay(db, other, a.relay.id), undefined);
  },
);

t.test('deleteUserRelay removes the user own relay only; outbox rows keep their URL', async (t) => {
  const user = await newUser('premium');
  const a = await addUserRelay(db, user, { url: 'wss://gone.example/' }, { max: 5 });
  if (a.status !== 'added') throw new Error('setup');
  const [dflt] = await ensureDefaultRelays(db, user, ['wss://default.example/']);
  t.equal(await deleteUserRelay(db, user, dflt!.userRelayId), false, 'default rows are not the user to delete');
  t.equal(await deleteUserRelay(db, await newUser(), a.relay.id), false, "another user's relay");
  t.equal(await deleteUserRelay(db, user, a.relay.id), true);
  t.equal(await deleteUserRelay(db, user, a.relay.id), false);
  t.same(await listUserRelays(db, user), []);
  t.equal((await listUserRelays(db, user, { includeDefaults: true })).length, 1);
});

t.test(
  'ensureDefaultRelays creates one row per default relay once, and reuses a row the user already has',
  async (t) => {
    const user = await newUser();
    const own = await addUserRelay(db, user, { url: 'wss://shared.example/' }, { max: 5 });
    if (own.status !== 'added') throw new Error('setup');
    const first = await ensureDefaultRelays(db, user, [
      'wss://d1.example/',
      'wss://shared.example/',
      'wss://d1.example/',
    ]);
    const second = await ensureDefaultRelays(db, user, ['wss://d1.example/', 'wss://shared.example/']);
    const rowsOf = (targets: typeof first) => targets.map(({ userRelayId, url }) => ({ userRelayId, url }));
    t.same(rowsOf(first), rowsOf(second), 'idempotent');
    t.same(
      first.map((r) => r.created),
      [true, false],
      'created: the rows this call inserted',
    );
    t.same(
      second.map((r) => r.created),
      [false, false],
    );
    t.equal(first.length, 2);
    t.equal(first.find((r) => r.url === 'wss://shared.example/')?.userRelayId, own.relay.id);
    const rows = await listUserRelays(db, user, { includeDefaults: true });
    t.match(
      rows.find((r) => r.url === 'wss://d1.example/'),
      { source: 'default', isDefault: true, write: true, read: false },
    );
    const parallel = await Promise.all(
      [1, 2, 3].map(() => inTrx((trx) => ensureDefaultRelays(trx, user, ['wss://d2.example/']))),
    );
    t.equal(new Set(parallel.map((p) => p[0]?.userRelayId)).size, 1, 'concurrent first uses agree on one row');
  },
);

t.test(
  'replaceNip65Relays: the list becomes the nip65 relays, earlier ones are deactivated, API relays untouched, cap kept',
  async (t) => {
    const user = await newUser('premium');
    const api = await addUserRelay(db, user, { url: 'wss://api.example/' }, { max: 10 });
    if (api.status !== 'added') throw new Error('setup');
    await ensureDefaultRelays(db, user, ['wss://was-default.example/']);
    const first = await inTrx((trx) =>
      replaceNip65Relays(
        trx,
        user,
        [
          { url: 'wss://one.example/', read: true },
          { url: 'wss://was-default.example/', read: false },
          { url: 'wss://api.example/', read: false },
        ],
        3,
      ),
    );
    t.same(first, {
      added: ['wss://one.example/', 'wss://was-default.example/'],
      kept: [],
      deactivated: [],
      skipped: [],
    });
    const second = await inTrx((trx) =>
      replaceNip65Relays(
        trx,
        user,
        [
          { url: 'wss://two.example/', read: false },
          { url: 'wss://was-default.example/', read: true },
          { url: 'wss://three.example/', read: true },
        ],
        3,
      ),
    );
    t.same(second, {
      added: ['wss://two.example/'],
      kept: ['wss://was-default.example/'],
      deactivated: ['wss://one.example/'],
      skipped: ['wss://three.example/'],
    });
    const rows = await listUserRelays(db, user);
    t.same(
      rows.map((r) => [r.url, r.source, r.isActive, r.read]).sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
      [
        ['wss://api.example/', 'api', true, true],
        ['wss://one.example/', 'nip65', false, true],
        ['wss://was-default.example/', 'nip65', true, true],
        ['wss://two.example/', 'nip65', true, false],
      ].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)) as unknown[],
    );
    const writable = rows.filter((r) => r.isActive && r.write).map((r) => r.url);
    t.same(
      writable.sort(),
      ['wss://api.example/', 'wss://two.example/', 'wss://was-default.example/'],
      'the relays its events now go to',
    );
  },
);

t.test('applyRelayList checks every relay of the list with the SSRF guard and reports what it refused', async (t) => {
  const user = await newUser('premium');
  const tags = [
    ['r', 'ws://127.0.0.1:7777'],
    ['r', 'ws://10.0.0.1'],
    ['r', 'wss://8.8.8.8/'],
  ];
  const change = await inTrx((trx) => applyRelayList(trx, user, { tags }, { allowPrivate: false, max: 10 }));
  t.same(change.added, ['wss://8.8.8.8/']);
  t.same(
    change.refused.map((r) => r.url),
    ['ws://127.0.0.1:7777/', 'ws://10.0.0.1/'],
  );
  t.match(change.refused[1]?.reason, /private address/);
  t.same(
    (await listUserRelays(db, user)).map((r) => r.url),
    ['wss://8.8.8.8/'],
  );
});

t.test('addOwnRelay: the plan must allow custom relays and the URL must pass the SSRF guard', async (t) => {
  const user = await newUser('premium');
  const opts = { allowPrivate: false, max: 10, customRelaysAllowed: true };
  t.match(await addOwnRelay(db, user, { url: 'wss://8.8.4.4' }, { ...opts, customRelaysAllowed: false }), {
    ok: false,
    rejection: { prefix: 'restricted' },
  });
  t.match(await addOwnRelay(db, user, { url: 'ws://127.0.0.1:7777' }, opts), {
    ok: false,
    rejection: { prefix: 'invalid', message: /loopback/ },
  });
  t.match(await addOwnRelay(db, user, { url: 'ws://10.0.0.1' }, opts), {
    ok: false,
    rejection: { prefix: 'invalid', message: /private/ },
  });
  t.same(await listUserRelays(db, user), [], 'nothing stored for refused URLs');
  t.match(await addOwnRelay(db, user, { url: 'WSS://8.8.4.4:443' }, opts), {
    ok: true,
    value: { status: 'added', relay: { url: 'wss://8.8.4.4/' } },
  });
  t.match(await addOwnRelay(db, user, { url: 'wss://1.0.0.1' }, { ...opts, max: 1 }), {
    ok: false,
    rejection: { prefix: 'restricted', message: /1 relays of your own/ },
  });
});

t.test('relays of their own follow the active subscription, else basic', async (t) => {
  const allowed = async (userId: string) => (await createPlans(db).effectivePlan(userId)).customRelaysAllowed;
  t.equal(await allowed(await newUser()), false);
  t.equal(await allowed(await newUser('premium')), true);
  t.equal(await allowed(await newUser('advanced')), true);
  const lapsed = await newUser('premium');
  await db('user_subscriptions').where({ user_id: lapsed }).update({ status: 'canceled' });
  t.equal(await allowed(lapsed), false);
});
