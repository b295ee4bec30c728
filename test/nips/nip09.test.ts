import t from 'tap';
import * as nip09 from '../../src/nips/nip09.js';
import { buildEvent, newKey } from '../helpers/events.js';

const alice = newKey();
const bob = newKey();
const hex = (c: string): string => c.repeat(64);

t.test('deletionTargets collects e ids and a coordinates of the author', async (t) => {
  const ev = buildEvent(alice.sk, {
    kind: 5,
    tags: [
      ['e', hex('1')],
      ['e', hex('2'), 'wss://relay.example/'],
      ['e', hex('1')],
      ['a', `30023:${alice.pk}:my:article`],
      ['a', `30023:${alice.pk}:`],
      ['a', `10002:${alice.pk}:ignored-d`],
      ['a', `0:${alice.pk}`.concat(':')],
      ['a', `30023:${alice.pk}:my:article`],
      ['k', '1'],
    ],
    content: 'oops',
  });
  t.same(nip09.deletionTargets(ev), {
    ids: [hex('1'), hex('2')],
    addresses: [
      { kind: 30023, pubkey: alice.pk, d: 'my:article' },
      { kind: 30023, pubkey: alice.pk, d: '' },
      { kind: 10002, pubkey: alice.pk, d: '' },
      { kind: 0, pubkey: alice.pk, d: '' },
    ],
  });
});

t.test(
  'deletionTargets ignores malformed values, other authors, kinds without an address and non-deletions',
  async (t) => {
    const ev = buildEvent(alice.sk, {
      kind: 5,
      tags: [
        ['e'],
        ['e', 'abc'],
        ['e', hex('A')],
        ['a', `30023:${bob.pk}:d`],
        ['a', `5:${alice.pk}:`],
        ['a', `1:${alice.pk}:`],
        ['a', `20000:${alice.pk}:`],
        ['a', `70000:${alice.pk}:`],
        ['a', `01:${alice.pk}:`],
        ['a', `x:${alice.pk}:`],
        ['a', `30023:${alice.pk}`],
        ['a', 'nonsense'],
        ['a'],
      ],
    });
    t.same(nip09.deletionTargets(ev), { ids: [], addresses: [] });
    const note = buildEvent(alice.sk, { kind: 1, tags: [['e', hex('1')]] });
    t.same(nip09.deletionTargets(note), { ids: [], addresses: [] }, 'only kind 5 deletes');
  },
);
