import t from 'tap';
import * as kinds from '../../src/nips/kinds.js';

t.test('kindClass follows the exact NIP-01 ranges, with unlisted kinds regular', async (t) => {
  const cases: [number, kinds.KindClass][] = [
    [0, 'replaceable'],
    [1, 'regular'],
    [2, 'regular'],
    [3, 'replaceable'],
    [4, 'regular'],
    [44, 'regular'],
    [45, 'regular'],
    [999, 'regular'],
    [1000, 'regular'],
    [9999, 'regular'],
    [10000, 'replaceable'],
    [10002, 'replaceable'],
    [19999, 'replaceable'],
    [20000, 'ephemeral'],
    [22242, 'ephemeral'],
    [29999, 'ephemeral'],
    [30000, 'addressable'],
    [39999, 'addressable'],
    [40000, 'regular'],
    [65535, 'regular'],
  ];
  for (const [kind, cls] of cases) t.equal(kinds.kindClass(kind), cls, `kind ${kind} is ${cls}`);
});

t.test('the named kind constants have their NIP numbers', async (t) => {
  t.same(
    [
      kinds.Metadata,
      kinds.ShortTextNote,
      kinds.Contacts,
      kinds.EventDeletion,
      kinds.Repost,
      kinds.Reaction,
      kinds.GenericRepost,
      kinds.RelayList,
      kinds.ClientAuth,
      kinds.HTTPAuth,
      kinds.LongFormArticle,
    ],
    [0, 1, 3, 5, 6, 7, 16, 10002, 22242, 27235, 30023],
  );
});

t.test('replaceKey gives the d tag for addressable, empty for replaceable and null otherwise', async (t) => {
  t.equal(
    kinds.replaceKey({
      kind: 30023,
      tags: [
        ['t', 'x'],
        ['d', 'slug'],
        ['d', 'second'],
      ],
    }),
    'slug',
  );
  t.equal(kinds.replaceKey({ kind: 30023, tags: [] }), '', 'a missing d tag is the empty key');
  t.equal(kinds.replaceKey({ kind: 30023, tags: [['d']] }), '', 'a d tag without a value is the empty key');
  t.equal(kinds.replaceKey({ kind: 0, tags: [['d', 'ignored']] }), '');
  t.equal(kinds.replaceKey({ kind: 10002, tags: [] }), '');
  t.equal(kinds.replaceKey({ kind: 1, tags: [['d', 'x']] }), null);
  t.equal(kinds.replaceKey({ kind: 20001, tags: [] }), null);
});
