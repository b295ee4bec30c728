// createTtlMap: entries expire ttlMs after they were set (or last read, with touch), the oldest go first past max,
// and an emptied map costs nothing (the reason it replaces lru-cache for caches that are often empty).
import t from 'tap';
import { createTtlMap } from '../../src/lib/ttl-map.js';

t.test('an entry is there until ttlMs after it was set, then gone', async (t) => {
  let now = 1000;
  const m = createTtlMap<string, number>({ max: 10, ttlMs: 100, now: () => now });
  m.set('a', 1);
  now += 100;
  t.equal(m.get('a'), 1, 'at ttlMs exactly it is still there');
  now += 1;
  t.equal(m.get('a'), undefined, 'past it, gone');
  t.equal(m.size, 0, 'and removed, not only hidden');
  m.set('a', 2);
  t.equal(m.get('a'), 2, 'set again, it is new');
});

t.test('past max the oldest entry is dropped; setting a key again makes it the newest', async (t) => {
  const m = createTtlMap<string, number>({ max: 3, ttlMs: 60_000 });
  m.set('a', 1);
  m.set('b', 2);
  m.set('c', 3);
  m.set('a', 10); // replaced: now the newest, and no entry dropped for it
  t.equal(m.size, 3);
  m.set('d', 4);
  t.equal(m.get('b'), undefined, 'b was the oldest');
  t.same(
    ['a', 'c', 'd'].map((k) => m.get(k)),
    [10, 3, 4],
  );
});

t.test('with touch, a read renews the entry and keeps it from being the oldest', async (t) => {
  let now = 0;
  const m = createTtlMap<string, number>({ max: 2, ttlMs: 100, touch: true, now: () => now });
  m.set('a', 1);
  m.set('b', 2);
  now = 90;
  t.equal(m.get('a'), 1);
  now = 150;
  t.equal(m.get('a'), 1, 'read at 90, so alive until 190');
  t.equal(m.get('b'), undefined, 'b, not read, expired at 100');
  m.set('c', 3);
  m.set('d', 4);
  t.equal(m.get('a'), undefined, 'the least recently used went first');
  const plain = createTtlMap<string, number>({ max: 2, ttlMs: 100, now: () => now });
  plain.set('x', 1);
  now = 240;
  t.equal(plain.get('x'), 1);
  now = 251;
  t.equal(plain.get('x'), undefined, 'without touch a read renews nothing');
});

t.test('delete removes an entry; deleting the last one leaves an empty map that works as before', async (t) => {
  const m = createTtlMap<string, number>({ max: 100_000, ttlMs: 60_000 });
  for (let round = 0; round < 1000; round++) {
    m.set('only', round);
    m.delete('only');
  }
  t.equal(m.size, 0);
  m.set('k', 1);
  t.equal(m.get('k'), 1);
});
