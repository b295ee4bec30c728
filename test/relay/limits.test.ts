// Limits that protect the process: a slow reader is dropped once its outgoing buffer passes the ceiling (with a
// close frame that says why, after what was queued), and
// connections beyond the per-IP cap are refused with 429 before the WebSocket handshake.
import t from 'tap';
import { WebSocket } from 'ws';
import { startTestApp } from '../helpers/app.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait-for.js';

const app = await startTestApp(t, {
  env: {
    MAX_BUFFERED_BYTES: '65536',
    MAX_CONNECTIONS_PER_IP: '3',
    MAX_CONTENT_LENGTH: '60000',
    MAX_MESSAGE_BYTES: '131072',
  },
  plans: { basic: { daily: -1 } },
});

t.test('a reader that stops reading is dropped, and others are unaffected', async (t) => {
  const key = newKey();
  const slow = await RawClient.connect(app.relayUrl);
  const writer = await RawClient.connect(app.relayUrl);
  t.teardown(() => writer.close());
  await slow.subscribe('all', { authors: [key.pk] });
  // stop reading at the TCP level: the server's send buffer fills up
  const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  socket.pause();
  const big = 'x'.repeat(50_000);
  const dropped = async () => ((await app.metrics.slowReadersDropped.get()).values[0]?.value ?? 0) > 0;
  for (let i = 0; i < 200 && !(await dropped()); i++) {
    t.same((await writer.publish(buildEvent(key.sk, { content: `${i} ${big}` })))[0], true);
  }
  t.ok(await dropped(), 'the slow reader was dropped');
  // reading again, it gets what was already queued, then a close frame that says why
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    slow.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  socket.resume();
  t.match(await closed, { code: 1008, reason: /^slow reader: more than 65536 bytes/ });
  await waitFor('its connection to be gone', async () => app.relay.connectionCount() === 1);
  t.equal(app.relay.connectionCount(), 1, 'and its connection is gone');
  t.same(await writer.publish(buildEvent(newKey().sk)), [true, ''], 'the writer still works');
  const metrics = await (await fetch(`${app.url}/metrics`)).text();
  t.match(metrics, /nostrx_slow_readers_dropped_total 1/);
});

t.test('connections beyond the per-IP limit are refused with 429 before the handshake', async (t) => {
  const open = await Promise.all([1, 2, 3].map(() => RawClient.connect(app.relayUrl)));
  t.teardown(() => open.forEach((c) => c.close()));
  const status = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(app.relayUrl);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => reject(new Error('the fourth connection was accepted')));
    ws.on('error', () => undefined);
  });
  t.equal(status, 429);
});

t.test('health, readiness and metrics endpoints answer', async (t) => {
  t.same(await (await fetch(`${app.url}/healthz`)).json(), { status: 'ok' });
  const ready = await fetch(`${app.url}/readyz`);
  t.equal(ready.status, 200);
  t.match(await ready.json(), { status: 'ready', database: 'ok', migrations: 'ok', redis: 'not configured' });
  const metrics = await (await fetch(`${app.url}/metrics`)).text();
  t.match(metrics, /nostrx_events_total\{outcome="accepted",reason="",via="relay"\} \d+/);
  t.match(metrics, /nostrx_connections \d+/);
  // the first test's REQ was read by one statement
  t.match(metrics, /nostrx_read_statement_filters_count [1-9]\d*\n/);
  t.match(metrics, /nostrx_read_statement_seconds_count\{outcome="answered"\} [1-9]\d*\n/);
});
