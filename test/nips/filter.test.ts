import t from 'tap';
import * as filter from '../../src/nips/filter.js';
import type { Filter, FilterLimits } from '../../src/nips/filter.js';
import type { NostrEvent } from '../../src/nips/nip01.js';
import type { Result } from '../../src/nips/result.js';

const limits: FilterLimits = { maxLimit: 500, defaultLimit: 100, maxFilterValues: 3 };
const messageOf = (r: Result<unknown>): string | undefined => (r.ok ? undefined : r.rejection.message);
const hex = (c: string): string => c.repeat(64);

const ev: NostrEvent = {
  id: hex('1'),
  pubkey: hex('a'),
  created_at: 1000,
  kind: 1,
  tags: [
    ['e', hex('e'), 'wss://r.example/', 'reply'],
    ['t', 'nostr'],
    ['t', 'second'],
    ['p', hex('b'), hex('c')],
    ['x'],
  ],
  content: '',
  sig: '0'.repeat(128),
};

t.test('parseFilter accepts every NIP-01 field and moves #x keys under tags', async (t) => {
  const raw = {
    ids: [hex('1')],
    authors: [hex('a')],
    kinds: [0, 65535],
    since: 0,
    until: 10,
    limit: 20,
    '#e': [hex('e')],
    '#t': ['x', ''],
    '#T': [],
  };
  t.same(filter.parseFilter(raw, limits), {
    ok: true,
    value: {
      ids: [hex('1')],
      authors: [hex('a')],
      kinds: [0, 65535],
      since: 0,
      until: 10,
      limit: 20,
      tags: { e: [hex('e')], t: ['x', ''], T: [] },
    },
  });
  t.same(filter.parseFilter({}, limits), { ok: true, value: {} });
  t.same(
    filter.parseFilter({ ids: [], kinds: [] }, limits),
    { ok: true, value: { ids: [], kinds: [] } },
    'empty arrays are allowed',
  );
  const r = filter.parseFilter(raw, limits);
  if (r.ok) t.not(r.value.ids, raw.ids, 'arrays are copied');
});

t.test('a tag value holding a NUL is dropped: it can match no stored event', async (t) => {
  const r = filter.parseFilter({ '#t': ['a\u0000b', 'nostr'], '#x': ['\u0000'] }, limits);
  t.same(r, { ok: true, value: { tags: { t: ['nostr'], x: [] } } });
  if (r.ok) t.equal(filter.matchesNothing(r.value), true, 'a tag left with no value matches nothing');
  const only = filter.parseFilter({ '#t': ['nostr'] }, limits);
  if (only.ok) t.equal(filter.matchesNothing(only.value), false);
});

t.test('parseFilter clamps limit to maxLimit', async (t) => {
  t.same(filter.parseFilter({ limit: 501 }, limits), { ok: true, value: { limit: 500 } });
  t.same(filter.parseFilter({ limit: 500 }, limits), { ok: true, value: { limit: 500 } });
  t.same(filter.parseFilter({ limit: 0 }, limits), { ok: true, value: { limit: 0 } });
});

t.test('parseFilter rejects every malformed field with a specific message', async (t) => {
  const cases: [unknown, string][] = [
    [null, 'invalid: filter must be a JSON object'],
    [[], 'invalid: filter must be a JSON object'],
    ['{}', 'invalid: filter must be a JSON object'],
    [{ foo: 1 }, 'invalid: unknown filter field "foo"'],
    [{ search: 'x' }, 'invalid: unknown filter field "search"'],
    [JSON.parse('{"__proto__":{}}'), 'invalid: unknown filter field "__proto__"'],
    [{ ids: hex('1') }, 'invalid: filter "ids" must be an array'],
    [{ ids: ['abcd'] }, 'invalid: filter "ids" has a prefix "abcd", only full 64-character ids are supported'],
    [
      { authors: ['abc'] },
      'invalid: filter "authors" has a prefix "abc", only full 64-character pubkeys are supported',
    ],
    [{ ids: [hex('A')] }, 'invalid: filter "ids" values must be 64-character lowercase hex ids'],
    [{ authors: [1] }, 'invalid: filter "authors" values must be 64-character lowercase hex pubkeys'],
    [{ ids: [hex('1'), hex('2'), hex('3'), hex('4')] }, 'invalid: filter "ids" has 4 values, the limit is 3'],
    [{ kinds: 1 }, 'invalid: filter "kinds" must be an array'],
    [{ kinds: [1, 2, 3, 4] }, 'invalid: filter "kinds" has 4 values, the limit is 3'],
    [{ kinds: [65536] }, 'invalid: filter "kinds" values must be integers from 0 to 65535'],
    [{ kinds: [-1] }, 'invalid: filter "kinds" values must be integers from 0 to 65535'],
    [{ kinds: ['1'] }, 'invalid: filter "kinds" values must be integers from 0 to 65535'],
    [{ since: -1 }, 'invalid: filter "since" must be a non-negative integer'],
    [{ until: 1.5 }, 'invalid: filter "until" must be a non-negative integer'],
    [{ limit: '10' }, 'invalid: filter "limit" must be a non-negative integer'],
    [{ '#': ['x'] }, 'invalid: filter tag field "#" must be # and a single letter'],
    [{ '#ab': ['x'] }, 'invalid: filter tag field "#ab" must be # and a single letter'],
    [{ '#1': ['x'] }, 'invalid: filter tag field "#1" must be # and a single letter'],
    [{ '#t': 'x' }, 'invalid: filter "#t" must be an array'],
    [{ '#t': [1] }, 'invalid: filter "#t" values must be strings'],
    [{ '#t': ['a', 'b', 'c', 'd'] }, 'invalid: filter "#t" has 4 values, the limit is 3'],
    [{ '#e': ['abc'] }, 'invalid: filter "#e" has a prefix "abc", only full 64-character ids are supported'],
    [{ '#p': ['npub1xyz'] }, 'invalid: filter "#p" values must be 64-character lowercase hex pubkeys'],
    [{ '#e': 'x' }, 'invalid: filter "#e" must be an array'],
  ];
  for (const [raw, message] of cases) t.equal(messageOf(filter.parseFilter(raw, limits)), message, JSON.stringify(raw));
});

t.test('matchFilter ANDs the fields of one filter', async (t) => {
  const yes: Filter[] = [
    {},
    { ids: [hex('2'), hex('1')] },
    { authors: [hex('a')] },
    { kinds: [1] },
    { since: 1000 },
    { until: 1000 },
    { since: 1000, until: 1000 },
    { tags: { t: ['nostr'] } },
    { tags: { e: [hex('e')], p: [hex('b')] } },
    {
      ids: [hex('1')],
      authors: [hex('a')],
      kinds: [1],
      since: 999,
      until: 1001,
      limit: 0,
      tags: { t: ['second', 'nostr'] },
    },
  ];
  for (const f of yes) t.equal(filter.matchFilter(f, ev), true, `matches ${JSON.stringify(f)}`);
  const no: Filter[] = [
    { ids: [hex('2')] },
    { ids: [] },
    { authors: [hex('b')] },
    { kinds: [0] },
    { since: 1001 },
    { until: 999 },
    { until: 0 },
    { tags: { t: ['other'] } },
    { tags: { t: [] } },
    { tags: { p: [hex('c')] } },
    { tags: { x: [''] } },
    { tags: { e: [hex('e')], t: ['missing'] } },
    { kinds: [1], authors: [hex('b')] },
  ];
  for (const f of no) t.equal(filter.matchFilter(f, ev), false, `does not match ${JSON.stringify(f)}`);
  t.equal(filter.matchFilter({ until: 0 }, { ...ev, created_at: 0 }), true, 'until 0 matches created_at 0');
});

t.test('matchFilters ORs the filters of one REQ', async (t) => {
  t.equal(filter.matchFilters([{ kinds: [0] }, { kinds: [1] }], ev), true);
  t.equal(filter.matchFilters([{ kinds: [0] }, { authors: [hex('b')] }], ev), false);
  t.equal(filter.matchFilters([], ev), false);
});

t.test('effectiveLimit uses the clamped limit, or the default when absent', async (t) => {
  t.equal(filter.effectiveLimit({}, limits), 100);
  t.equal(filter.effectiveLimit({ limit: 7 }, limits), 7);
  t.equal(filter.effectiveLimit({ limit: 0 }, limits), 0);
  t.equal(filter.effectiveLimit({ limit: 10_000 }, limits), 500, 'a limit that was not parsed is still clamped');
  t.equal(filter.effectiveLimit({}, { ...limits, defaultLimit: 1000 }), 500, 'the default is clamped too');
});

t.test('matchesNothing detects empty arrays and since after until', async (t) => {
  t.equal(filter.matchesNothing({}), false);
  t.equal(filter.matchesNothing({ ids: [] }), true);
  t.equal(filter.matchesNothing({ authors: [] }), true);
  t.equal(filter.matchesNothing({ kinds: [] }), true);
  t.equal(filter.matchesNothing({ tags: { t: ['x'], e: [] } }), true);
  t.equal(filter.matchesNothing({ tags: { t: ['x'] } }), false);
  t.equal(filter.matchesNothing({ since: 11, until: 10 }), true);
  t.equal(filter.matchesNothing({ since: 10, until: 10 }), false);
  t.equal(filter.matchesNothing({ limit: 0 }), false, 'limit 0 still subscribes to new events');
});
