// The per-IP rate limit covers the HTTP API too (/v1), sharing its bucket with the relay's messages: past the
// burst a request is a 429 `rate_limited` with Retry-After, answered before its body or signature is looked at;
// the operations routes (/healthz, /readyz, /metrics) are not limited.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';

// one token a second after a burst of 4: each refusal below is checked right after a 429, so a slow machine that
// takes more than a second between two steps does not refill the bucket under the test
const app = await startTestApp(t, {
  env: { RATE_LIMIT_IP_PER_SECOND: '1', RATE_LIMIT_IP_BURST: '4', RATE_LIMIT_CONN_PER_SECOND: '0' },
});
const api = new ApiClient(app.url);
const alice = newKey();

/** Requests until the first 429 (at most 10); returns it and how many were served before it. */
async function drain(): Promise<{ over: Awaited<ReturnType<ApiClient['request']>>; served: number }> {
  for (let served = 0; served < 10; served++) {
    const r = await api.request('GET', '/v1/plans', { headers: { origin: 'https://x.com' } });
    if (r.status === 429) return { over: r, served };
  }
  throw new Error('no 429 after 10 requests');
}

t.test(
  'past the burst: 429 rate_limited with Retry-After, before the signature is checked; probes still answer',
  async (t) => {
    const c = await RawClient.connect(app.relayUrl);
    t.teardown(() => c.close());
    t.same(
      await c.publish(buildEvent(alice.sk, { content: 'one relay message' })),
      [true, ''],
      'a relay message takes a token from the same bucket',
    );

    const { over, served } = await drain();
    t.ok(served >= 3, `the rest of the burst is served first (${served})`);
    t.equal(over.status, 429);
    t.equal(
      over.headers.get('access-control-allow-origin'),
      '*',
      'a page can read the refusal (CORS before the limit)',
    );
    t.equal(over.body.error.code, 'rate_limited');
    t.match(over.body.error.message, /your IP address may send 1 messages per second \(bursts of 4\)/);
    t.equal(over.headers.get('retry-after'), '1');

    await drain();
    t.match(
      await c.publish(buildEvent(alice.sk, { content: 'after the API used the bucket' })),
      [false, /^rate-limited: slow down: your IP address/],
      'the API and the relay share the bucket',
    );

    await drain();
    const broken = await api.signed(alice, 'GET', '/v1/me', { afterSign: (e) => ({ ...e, sig: '0'.repeat(128) }) });
    t.equal(broken.status, 429, 'a request with a broken signature is refused for its rate first, not verified');

    t.equal((await api.request('GET', '/healthz')).status, 200, '/healthz is not limited');
    t.equal((await api.request('GET', '/metrics')).status, 200, '/metrics is not limited');
  },
);
