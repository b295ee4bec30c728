// The per-IP rate limit covers the HTTP API too (/v1), sharing its bucket with the relay's messages: past the
// burst a request is a 429 `rate_limited` with Retry-After, answered before its body or signature is looked at;
// the operations routes (/healthz, /readyz, /metrics) are not limited.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';

// one token a minute: the burst of 4 is all a test gets
const app = await startTestApp(t, { env: { RATE_LIMIT_IP_PER_SECOND: '1', RATE_LIMIT_IP_BURST: '4', RATE_LIMIT_CONN_PER_SECOND: '0' } });
const api = new ApiClient(app.url);
const alice = newKey();

t.test('past the burst: 429 rate_limited with Retry-After, before the signature is checked; probes still answer', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  t.same(await c.publish(buildEvent(alice.sk, { content: 'one relay message' })), [true, ''], 'a relay message takes a token from the same bucket');

  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await api.request('GET', '/v1/plans')).status);
  t.same(statuses, [200, 200, 200], 'the rest of the burst');

  const over = await api.request('GET', '/v1/plans', { headers: { origin: 'https://x.com' } });
  t.equal(over.status, 429);
  t.equal(over.headers.get('access-control-allow-origin'), '*', 'a page can read the refusal (CORS before the limit)');
  t.equal(over.body.error.code, 'rate_limited');
  t.match(over.body.error.message, /your IP address may send 1 messages per second \(bursts of 4\)/);
  t.equal(over.headers.get('retry-after'), '1');

  const broken = await api.signed(alice, 'GET', '/v1/me', { afterSign: (e) => ({ ...e, sig: '0'.repeat(128) }) });
  t.equal(broken.status, 429, 'a request with a broken signature is refused for its rate first, not verified');

  t.equal((await api.request('GET', '/healthz')).status, 200, '/healthz is not limited');
  t.equal((await api.request('GET', '/metrics')).status, 200, '/metrics is not limited');
  t.match(await c.publish(buildEvent(alice.sk, { content: 'after the API used the bucket' })), [false, /^rate-limited: slow down: your IP address/]);
});
