// SSRF through user relays, with ALLOW_PRIVATE_RELAYS=false (the default): a user relay on 127.0.0.1, 10.0.0.1 or a
// name resolving to loopback is refused when it is added (API, NIP-65) and again when the forwarder connects. The
// operator's UPSTREAM_RELAYS are configuration, not user input, and are used as configured.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { forwardTestEnv, publishRows, subscribeUser, waitForFinal } from '../../helpers/forwarding.js';
import { healthyRelay } from '../../helpers/upstream-relays.js';
import { addOwnRelay } from '../../../src/core/forwarding/relay-targets.js';
import { listUserRelays } from '../../../src/store/user-relays.js';

const operatorRelay = await healthyRelay(t, 'operator');
const victim = await healthyRelay(t, 'internal-service');
const app = await startTestApp(t, {
  env: { ...forwardTestEnv, ALLOW_PRIVATE_RELAYS: 'false', UPSTREAM_RELAYS: operatorRelay.url },
});
const db = app.db.knex;
const policy = {
  allowPrivate: app.config.allowPrivateRelays,
  max: app.config.maxCustomRelays,
  customRelaysAllowed: true,
};

t.test('Mallory cannot add a relay on 127.0.0.1 or 10.0.0.1 through the API', async (t) => {
  const mallory = newKey();
  const userId = await subscribeUser(db, mallory.pk, 'premium');
  const loop = await addOwnRelay(db, userId, { url: victim.url }, policy);
  t.match(loop, {
    ok: false,
    rejection: { prefix: 'invalid', message: /^invalid: relay host 127\.0\.0\.1 is a loopback address/ },
  });
  const priv = await addOwnRelay(db, userId, { url: 'ws://10.0.0.1:7000' }, policy);
  t.match(priv, {
    ok: false,
    rejection: { prefix: 'invalid', message: /^invalid: relay host 10\.0\.0\.1 is a private address/ },
  });
  t.same(await listUserRelays(db, userId), []);
});

t.test(
  'Mallory cannot add them through a NIP-65 list either: the list is accepted, the private relays are not taken',
  async (t) => {
    const mallory = newKey();
    const userId = await subscribeUser(db, mallory.pk, 'premium');
    const c = await RawClient.connect(app.relayUrl);
    t.teardown(() => c.close());
    const list = buildEvent(mallory.sk, {
      kind: 10002,
      content: '',
      tags: [
        ['r', victim.url],
        ['r', 'ws://10.0.0.1:7000'],
        ['r', `ws://localhost:${victim.port}`],
      ],
    });
    t.same(await c.publish(list), [true, '']);
    t.same(await listUserRelays(db, userId), [], 'no relay of her own was created');
    const rows = await waitForFinal(db, [list.id]);
    t.same(
      rows.map((r) => r.relay_url),
      [operatorRelay.url],
      'with no relay of her own, the list goes to the operator relays',
    );
    t.equal(rows[0]?.status, 'published');
    t.equal(victim.connections, 0);
  },
);

t.test(
  'a user relay that points at a private address is refused again when connecting (literal and name)',
  async (t) => {
    const mallory = newKey();
    const userId = await subscribeUser(db, mallory.pk, 'premium');
    // As if the check at add time had been passed (e.g. DNS changed since): rows written directly.
    await db('user_relays').insert([
      { user_id: userId, relay_url: victim.url, source: 'api' },
      { user_id: userId, relay_url: `ws://localhost:${victim.port}/`, source: 'api' },
    ]);
    const c = await RawClient.connect(app.relayUrl);
    t.teardown(() => c.close());
    const note = buildEvent(mallory.sk, { content: 'knock knock' });
    t.same(await c.publish(note), [true, '']);
    const rows = await waitForFinal(db, [note.id]);
    t.equal(rows.length, 2);
    for (const r of rows) {
      t.equal(r.status, 'failed', r.relay_url);
      t.equal(r.error_code, 'address_not_allowed');
      t.match(r.error_message, /loopback address; only public addresses are allowed/);
      t.equal(r.attempts, 1, 'not retried');
    }
    t.equal(victim.connections, 0, 'no WebSocket connection reached the internal service');
    t.equal(victim.infoRequests, 0, 'and no NIP-11 request');
    t.same(
      (await publishRows(db, note.id)).map((r) => r.attempt_log.length),
      [1, 1],
    );
  },
);

t.test('the operator relays on loopback are used as configured', async (t) => {
  const alice = newKey();
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const note = buildEvent(alice.sk, { content: 'hi' });
  t.same(await c.publish(note), [true, '']);
  const [row] = await waitForFinal(db, [note.id]);
  t.equal(row?.status, 'published');
  t.equal(operatorRelay.count(note.id), 1);
});
