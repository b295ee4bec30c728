// The SSRF guard of core/forwarding/relay-targets.ts: relay URLs must be ws(s):// and their host must resolve only to public
// addresses unless private relays are allowed; checked when a relay is added and again when connecting.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import {
  checkHost,
  guardedLookup,
  relayListEntries,
  validateRelayUrl,
  type Resolver,
} from '../../../src/core/forwarding/relay-targets.js';

const strict = { allowPrivate: false };
const fake =
  (table: Record<string, string[]>): Resolver =>
  async (host) => {
    const addrs = table[host];
    if (!addrs) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

t.test('validateRelayUrl', async (t) => {
  t.test(
    'refuses loopback, private, link-local, multicast and unspecified hosts when private relays are not allowed',
    async (t) => {
      const cases: [string, RegExp][] = [
        [
          'ws://127.0.0.1:7777',
          /^invalid: relay host 127\.0\.0\.1 is a loopback address; only public addresses are allowed$/,
        ],
        ['ws://10.0.0.1', /^invalid: relay host 10\.0\.0\.1 is a private address/],
        ['wss://192.168.1.20/relay', /private address/],
        ['ws://100.64.0.1', /private address/],
        ['ws://169.254.169.254', /link-local address/],
        ['ws://[::1]:8080', /loopback address/],
        ['ws://[fd00::1]', /private address/],
        ['ws://[::ffff:10.0.0.1]', /private address/],
        ['ws://224.0.0.1', /multicast address/],
        ['ws://0.0.0.0:80', /unspecified address/],
        ['ws://localhost:7777', /^invalid: relay host localhost resolves to (127\.0\.0\.1|::1), a loopback address/],
      ];
      for (const [url, message] of cases) {
        const r = await validateRelayUrl(url, strict);
        t.notOk(r.ok, url);
        if (!r.ok) t.match(r.rejection.message, message, url);
      }
    },
  );

  t.test('refuses a name when any one of its addresses is not public', async (t) => {
    const resolve = fake({ 'mixed.example': ['93.184.216.34', '10.1.2.3'] });
    const r = await validateRelayUrl('wss://mixed.example', { ...strict, resolve });
    t.same(r, {
      ok: false,
      rejection: {
        prefix: 'invalid',
        message:
          'invalid: relay host mixed.example resolves to 10.1.2.3, a private address; only public addresses are allowed',
      },
    });
  });

  t.test('accepts a public host and returns the normalised URL', async (t) => {
    const resolve = fake({ 'relay.example': ['93.184.216.34', '2606:2800:220:1::1'] });
    t.same(await validateRelayUrl('WSS://Relay.Example:443', { ...strict, resolve }), {
      ok: true,
      value: 'wss://relay.example/',
    });
    t.same(await validateRelayUrl('wss://1.1.1.1/nostr', strict), { ok: true, value: 'wss://1.1.1.1/nostr' });
  });

  t.test(
    'allows private and loopback hosts with ALLOW_PRIVATE_RELAYS, but never unspecified or multicast',
    async (t) => {
      t.same(await validateRelayUrl('ws://127.0.0.1:7777', { allowPrivate: true }), {
        ok: true,
        value: 'ws://127.0.0.1:7777/',
      });
      t.same(await validateRelayUrl('ws://10.0.0.1', { allowPrivate: true }), { ok: true, value: 'ws://10.0.0.1/' });
      t.notOk((await validateRelayUrl('ws://0.0.0.0', { allowPrivate: true })).ok);
      t.notOk((await validateRelayUrl('ws://239.1.1.1', { allowPrivate: true })).ok);
    },
  );

  t.test('refuses URLs that are not ws:// or wss://, and hosts that do not resolve', async (t) => {
    t.match(await validateRelayUrl('https://relay.example', strict), {
      ok: false,
      rejection: { message: 'invalid: relay URL must start with ws:// or wss://' },
    });
    t.match(await validateRelayUrl('not a url', strict), { ok: false, rejection: { prefix: 'invalid' } });
    t.match(await validateRelayUrl('wss://user:pw@relay.example', strict), {
      ok: false,
      rejection: { message: /credentials/ },
    });
    t.match(await validateRelayUrl('wss://nowhere.example', { ...strict, resolve: fake({}) }), {
      ok: false,
      rejection: { message: 'invalid: relay host nowhere.example does not resolve' },
    });
  });

  t.test('a resolver failure is error: (try again later), and a slow resolver is bounded', async (t) => {
    const broken: Resolver = async () => {
      throw Object.assign(new Error('queryA EAI_AGAIN'), { code: 'EAI_AGAIN' });
    };
    t.match(await validateRelayUrl('wss://relay.example', { ...strict, resolve: broken }), {
      ok: false,
      rejection: { prefix: 'error', message: /EAI_AGAIN/ },
    });
    const slow: Resolver = () => new Promise(() => undefined);
    t.match(await checkHost('relay.example', { ...strict, resolve: slow, timeoutMs: 50 }), {
      ok: false,
      rejection: { prefix: 'error', message: /ETIMEOUT/ },
    });
  });
});

t.test('guardedLookup refuses the connection itself when the name resolves to a refused address', async (t) => {
  const server = http.createServer((_req, res) => res.end('reached'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const get = (allowPrivate: boolean) =>
    new Promise<string>((resolve, reject) => {
      const req = http.get(
        { host: 'localhost', port, family: 4, lookup: guardedLookup({ allowPrivate }) as never },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
    });
  await t.rejects(get(false), {
    code: 'ENOTALLOWED',
    message: /localhost resolves to 127\.0\.0\.1, a loopback address/,
  });
  t.equal(await get(true), 'reached');
});

t.test('relayListEntries takes the write relays of a NIP-65 list, with their read flag', async (t) => {
  const tags = [
    ['r', 'wss://both.example'],
    ['r', 'wss://write.example/', 'write'],
    ['r', 'wss://read.example', 'read'],
    ['r', 'https://not-a-relay.example'],
    ['r', 'WSS://Both.Example:443'],
    ['p', 'wss://ignored.example'],
  ];
  t.same(relayListEntries({ tags }), [
    { url: 'wss://both.example/', read: true },
    { url: 'wss://write.example/', read: false },
  ]);
});
