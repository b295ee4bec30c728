import t from 'tap';
import * as relayUrl from '../../src/nips/relay-url.js';
import type { AddressClass } from '../../src/nips/relay-url.js';
import type { Result } from '../../src/nips/result.js';

const messageOf = (r: Result<unknown>): string | undefined => (r.ok ? undefined : r.rejection.message);

t.test('parseRelayUrl normalises ws and wss URLs', async (t) => {
  t.same(relayUrl.parseRelayUrl('wss://Relay.Example.COM'), {
    ok: true,
    value: { url: 'wss://relay.example.com/', host: 'relay.example.com', port: 443, secure: true },
  });
  t.same(relayUrl.parseRelayUrl('wss://relay.example.com:443/'), {
    ok: true,
    value: { url: 'wss://relay.example.com/', host: 'relay.example.com', port: 443, secure: true },
  });
  t.same(relayUrl.parseRelayUrl('ws://relay.example.com:80/nostr/'), {
    ok: true,
    value: { url: 'ws://relay.example.com/nostr', host: 'relay.example.com', port: 80, secure: false },
  });
  t.same(relayUrl.parseRelayUrl('wss://relay.example.com:7447?b=2&a=1#frag'), {
    ok: true,
    value: { url: 'wss://relay.example.com:7447/?a=1&b=2', host: 'relay.example.com', port: 7447, secure: true },
  });
  t.same(relayUrl.parseRelayUrl('ws://[::1]:7777'), {
    ok: true,
    value: { url: 'ws://[::1]:7777/', host: '::1', port: 7777, secure: false },
  });
  t.same(
    relayUrl.parseRelayUrl('ws://0x7f.1/'),
    { ok: true, value: { url: 'ws://127.0.0.1/', host: '127.0.0.1', port: 80, secure: false } },
    'odd IPv4 forms come out canonical',
  );
});

t.test('parseRelayUrl refuses other schemes, credentials, missing hosts and garbage', async (t) => {
  const cases: [string, string][] = [
    ['relay.example.com', 'invalid: relay URL is not a valid URL'],
    ['wss://', 'invalid: relay URL is not a valid URL'],
    ['https://relay.example.com', 'invalid: relay URL must start with ws:// or wss://'],
    ['http://relay.example.com', 'invalid: relay URL must start with ws:// or wss://'],
    ['file:///etc/passwd', 'invalid: relay URL must start with ws:// or wss://'],
    ['wss://user@relay.example.com', 'invalid: relay URL must not contain credentials'],
    ['wss://:pw@relay.example.com', 'invalid: relay URL must not contain credentials'],
    [`wss://relay.example.com/${'a'.repeat(2048)}`, 'invalid: relay URL is longer than 2048 characters'],
  ];
  for (const [url, message] of cases) t.equal(messageOf(relayUrl.parseRelayUrl(url)), message, url.slice(0, 40));
});

t.test('classifyAddress sorts IPv4, IPv6 and IPv4-mapped addresses into classes', async (t) => {
  const cases: [string, AddressClass][] = [
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['2606:4700:4700::1111', 'public'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::8.8.8.8', 'public'],
    ['64:ff9b:1::1', 'reserved'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:0808:0808::1', 'public'],
    ['2001:db8::1', 'reserved'],
    ['::7f00:1', 'reserved'], // IPv4-compatible (deprecated), outside 2000::/3
    ['::127.0.0.1', 'loopback'], // ipaddr.js reads a dotted tail as IPv4-mapped
    ['fec0::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['localhost', 'reserved'],
    ['', 'reserved'],
    ['999.1.1.1', 'reserved'],
  ];
  for (const [ip, cls] of cases) t.equal(relayUrl.classifyAddress(ip), cls, `${ip || '(empty)'} is ${cls}`);
});
