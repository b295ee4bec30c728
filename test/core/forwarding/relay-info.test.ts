// NIP-11 documents of upstream relays: parsed leniently, fetched with a bound on time and size.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { fetchRelayInfo, parseRelayInfo } from '../../../src/core/forwarding/upstream-info.js';
import { guardedLookup } from '../../../src/core/forwarding/relay-targets.js';

t.test('parseRelayInfo keeps a JSON object and the integers of supported_nips', async (t) => {
  t.same(parseRelayInfo('{"name":"x","supported_nips":[11,1,"2",1,70000,-1,1.5]}'), {
    info: { name: 'x', supported_nips: [11, 1, '2', 1, 70000, -1, 1.5] },
    supportedNips: [1, 11],
  });
  t.equal(parseRelayInfo('{"name":"x"}')?.supportedNips, null);
  t.equal(parseRelayInfo('[1]'), undefined);
  t.equal(parseRelayInfo('not json'), undefined);
});

t.test('fetchRelayInfo asks for application/nostr+json and refuses what is not a small JSON object', async (t) => {
  let accept = '';
  const server = http.createServer((req, res) => {
    accept = req.headers.accept ?? '';
    if (req.url === '/big') return res.end(`{"pad":"${'x'.repeat(70_000)}"}`);
    if (req.url === '/missing') return res.writeHead(404).end();
    if (req.url === '/slow') return setTimeout(() => res.end('{}'), 500);
    return res.end('{"name":"small","supported_nips":[1]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const opts = { timeoutMs: 200, userAgent: 'test' };
  t.same(await fetchRelayInfo(`${base}/`, opts), { info: { name: 'small', supported_nips: [1] }, supportedNips: [1] });
  t.equal(accept, 'application/nostr+json');
  await t.rejects(fetchRelayInfo(`${base}/big`, opts), /larger than 64 KiB/);
  await t.rejects(fetchRelayInfo(`${base}/missing`, opts), /HTTP 404/);
  await t.rejects(fetchRelayInfo(`${base}/slow`, opts), /no NIP-11 document within 200 ms/);
  await t.rejects(
    fetchRelayInfo(`ws://localhost:${(server.address() as AddressInfo).port}/`, {
      ...opts,
      lookup: guardedLookup({ allowPrivate: false }),
    }),
    { code: 'ENOTALLOWED' },
  );
});
