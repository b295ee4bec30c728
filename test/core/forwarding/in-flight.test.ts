// The forwarder's in-flight gauge (nostrx_forward_in_flight): an attempt is `sending` from sending an event to the
// relay's answer, then `recording` until its outcome is committed. A row whose event was removed before it was
// sent is recorded without being sent: it must show as recording only, and hold no sending slot meanwhile.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { healthyRelay } from '../../helpers/upstream-relays.js';
import { forwardTestEnv, publishRows } from '../../helpers/forwarding.js';
import { waitFor } from '../../helpers/wait-for.js';
import { createForwarder } from '../../../src/core/forwarding/forwarder.js';

const relay = await healthyRelay(t, 'gauge');
// the app's own forwarder is off: the one under test is made below, once the row is in place
const app = await startTestApp(t, { env: { ...forwardTestEnv, UPSTREAM_RELAYS: relay.url, FORWARD_ENABLED: 'false' } });
const db = app.db.knex;

t.test('a removed event is recorded without holding a sending slot', async (t) => {
  const kim = newKey();
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const ev = buildEvent(kim.sk, { content: 'removed before it was forwarded' });
  t.same(await c.publish(ev), [true, '']);
  await db('nostr_events').where({ event_id: ev.id }).update({ removed_at: db.fn.now(), removed_reason: 'banned' });

  // the recording transaction updates the event's totals: holding the event's row keeps the outcome unrecorded
  const holder = await db.transaction();
  await holder.raw('SELECT id FROM nostr_events WHERE event_id = ? FOR UPDATE', [ev.id]);
  const forwarder = createForwarder({ db, config: app.config, log: app.log, workerId: 'gauge-worker' });
  forwarder.start();
  t.teardown(() => forwarder.stop());
  await waitFor('the claim', async () => (await publishRows(db, ev.id)).find((r) => r.attempts === 1));
  const state = await waitFor('the attempt to be recording', async () => {
    const f = forwarder.inFlight();
    return f.sending === 0 && f.recording === 1 ? f : undefined;
  });
  t.same(state, { sending: 0, recording: 1 }, 'recording, not sending');

  await holder.rollback();
  const [row] = await waitFor('the outcome', async () => {
    const rows = await publishRows(db, ev.id);
    return rows.every((r) => r.status === 'failed') ? rows : undefined;
  });
  t.equal(row?.error_code, 'event_removed');
  t.equal(relay.received.length, 0, 'nothing was sent');
  await waitFor('the gauge to empty', async () => forwarder.inFlight().recording === 0);
  t.same(forwarder.inFlight(), { sending: 0, recording: 0 });
});
