import t from 'tap';
import * as nip65 from '../../src/nips/nip65.js';

t.test('writeRelays keeps unmarked and write relays, normalised and deduplicated', async (t) => {
  const tags = [
    ['r', 'wss://Relay.One.example'],
    ['r', 'wss://relay.one.example/', 'write'],
    ['r', 'wss://read.example', 'read'],
    ['r', 'ws://plain.example:80/path/'],
    ['r', 'wss://empty-marker.example', ''],
    ['r', 'wss://odd-marker.example', 'both'],
    ['r', 'https://http.example'],
    ['r', 'wss://user:pw@creds.example'],
    ['r', 'not a url'],
    ['r'],
    ['p', 'wss://not-r.example'],
  ];
  t.same(nip65.writeRelays({ tags }), [
    'wss://relay.one.example/',
    'ws://plain.example/path',
    'wss://empty-marker.example/',
  ]);
  t.same(nip65.writeRelays({ tags: [] }), []);
});
