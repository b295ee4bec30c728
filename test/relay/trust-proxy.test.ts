// Behind a load balancer (TRUST_PROXY=true) the per-IP limits see the client address from X-Forwarded-For, not
// the balancer's: two clients behind one proxy each get their own allowance.
import t from 'tap';
import { WebSocket } from 'ws';
import { startTestApp } from '../helpers/app.js';

const app = await startTestApp(t, { env: { TRUST_PROXY: 'true', MAX_CONNECTIONS_PER_IP: '1' } });

function open(forwardedFor: string): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(app.relayUrl, { headers: { 'x-forwarded-for': `${forwardedFor}, 10.0.0.2` } });
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.on('error', () => undefined);
  });
}

t.test('connection caps count the forwarded client address', async (t) => {
  const alice = await open('203.0.113.1');
  const bob = await open('203.0.113.2');
  t.teardown(() => {
    alice.ws?.close();
    bob.ws?.close();
  });
  t.equal(alice.status, 101);
  t.equal(bob.status, 101, 'another client behind the same proxy is its own IP');
  t.equal((await open('203.0.113.1')).status, 429, 'the same client again is over its cap');
});
