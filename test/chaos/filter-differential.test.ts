// Filter matching, differential (as strfry tests its filters): random events are stored through the real write
// path (store/event-batch.ts), then random filters are answered three ways, which must agree exactly:
//   - the SQL path: store/events.ts queryFilter (REQ: newest first, ties by lowest id, limit) and countFilters (COUNT);
//     the same filters read again several to a statement (queryFilters, as concurrent REQs are) must match it, and
//     each answer's JSON text must be the stored event exactly
//   - the in-memory matcher the live fan-out uses: nips/filter.ts matchFilter
//   - a naive reference written here from NIP-01's words, sharing no code with either
// Values come from small pools so that filters match often (a few authors, kinds, tag letters and values, a
// narrow time range). Tag values stay under 128 characters: longer ones are not indexed, a documented limit
// (store/events.ts). 5,000 events and 200 filters in npm test; 100,000 and 300 in npm run chaos. The seed is
// printed; CHAOS_SEED=<n> replays a run.
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import { createTestDatabase } from '../helpers/db.js';
import { figures, scale } from '../helpers/chaos.js';
import { insertBatch } from '../../src/store/event-batch.js';
import { NO_UPSTREAM } from '../../src/store/forwarding-plan.js';
import { countFilters, queryFilter, queryFilters, type FilterRead } from '../../src/store/events.js';
import { upsertUserByPubkey } from '../../src/store/users.js';
import { matchFilter, type Filter } from '../../src/nips/filter.js';
import type { NostrEvent } from '../../src/nips/nip01.js';

const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function generator(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const random = generator(seed);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
const some = <T>(xs: readonly T[], max: number): T[] => [
  ...new Set(Array.from({ length: 1 + int(max) }, () => pick(xs))),
];
const hex64 = () => Array.from({ length: 64 }, () => '0123456789abcdef'[int(16)]).join('');

const AUTHORS = Array.from({ length: 8 }, hex64);
const KINDS = [1, 6, 7, 16, 1111, 9735, 40000]; // regular kinds: every event stays (no replacing, no deletion)
const LETTERS = ['e', 'p', 't', 'T', 'x', 'r'];
const VALUES = ['a', 'b', 'c', 'nostr', 'Nostr', '', 'é', '😀', hex64(), hex64(), 'x'.repeat(100)];
const NOW = Math.floor(Date.now() / 1000);
const SPAN = 500; // created_at within 500 s: many ties, exercised by the ordering

function randomTag(): string[] {
  const r = random();
  if (r < 0.05) return [pick(LETTERS)]; // a name with no value matches nothing
  if (r < 0.1) return [pick(['content-warning', 'expiry', 'tt', 'alt']), pick(VALUES)]; // not a single letter
  return [pick(LETTERS), pick(VALUES), ...(random() < 0.2 ? [pick(VALUES)] : [])]; // only the first value counts
}

function randomEvent(): NostrEvent {
  return {
    id: hex64(),
    pubkey: pick(AUTHORS),
    created_at: NOW - int(SPAN),
    kind: pick(KINDS),
    tags: Array.from({ length: int(5) }, randomTag),
    content: '',
    sig: '0'.repeat(128),
  };
}

function randomFilter(stored: readonly NostrEvent[]): Filter {
  const f: Filter = {};
  if (random() < 0.15) f.ids = Array.from({ length: 1 + int(4) }, () => (random() < 0.7 ? pick(stored).id : hex64()));
  if (random() < 0.4) f.authors = some(AUTHORS, 3);
  if (random() < 0.4) f.kinds = some(KINDS, 3);
  if (random() < 0.3) f.since = NOW - int(SPAN + 20);
  if (random() < 0.3) f.until = NOW - int(SPAN + 20);
  if (random() < 0.5) {
    f.tags = {};
    for (const letter of some(LETTERS, 2)) f.tags[letter] = some(VALUES, 3);
  }
  if (random() < 0.5) f.limit = 1 + int(60);
  return f;
}

/** NIP-01, read literally: every condition that is present must hold; a tag condition holds when some tag has
 * the letter as its name and one of the values as its first value. */
function reference(f: Filter, e: NostrEvent): boolean {
  const conditions: boolean[] = [];
  if (f.ids !== undefined) conditions.push(f.ids.some((id) => id === e.id));
  if (f.authors !== undefined) conditions.push(f.authors.some((a) => a === e.pubkey));
  if (f.kinds !== undefined) conditions.push(f.kinds.some((k) => k === e.kind));
  if (f.since !== undefined) conditions.push(e.created_at >= f.since);
  if (f.until !== undefined) conditions.push(e.created_at <= f.until);
  for (const [letter, values] of Object.entries(f.tags ?? {})) {
    conditions.push(e.tags.some((tag) => tag.length >= 2 && tag[0] === letter && values.some((v) => v === tag[1])));
  }
  return conditions.every(Boolean);
}

/** REQ's order: newest first, then the lowest id. */
const newestFirst = (a: NostrEvent, b: NostrEvent) =>
  b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

t.test('the SQL path, the in-memory matcher and a naive reference agree on every filter', async (t) => {
  const db = (await createTestDatabase(t)).knex;
  const { user } = await upsertUserByPubkey(db, AUTHORS[0]!);
  const count = scale(5000, 100_000);
  const events = Array.from({ length: count }, randomEvent);
  const extras = { userId: user.id, dTag: null, expiresAt: undefined };
  const storeStarted = Date.now();
  for (let i = 0; i < events.length; i += 1000) {
    await insertBatch(
      db,
      events.slice(i, i + 1000).map((ev) => ({ ev, extras, forwarding: NO_UPSTREAM })),
    );
  }
  const storeMs = Date.now() - storeStarted;
  await db.raw('ANALYZE nostr_events, nostr_event_tags');
  const byId = new Map(events.map((e) => [e.id, e]));
  let texts = 0;

  const filters = scale(200, 300);
  let matched = 0;
  let disagreements = 0;
  const queryStarted = Date.now();
  const asked: { read: FilterRead; ids: string[] }[] = [];
  for (let n = 0; n < filters; n++) {
    const f = randomFilter(events);
    const expected = events.filter((e) => reference(f, e)).sort(newestFirst);
    const byMatcher = events.filter((e) => matchFilter(f, e)).sort(newestFirst);
    const limit = f.limit ?? 500; // the relay never returns more than MAX_LIMIT (500); COUNT checks the whole set
    const bySql = await queryFilter(db, f, limit, NOW);
    asked.push({ read: { filter: f, limit }, ids: bySql.map((e) => e.id) });
    for (const e of bySql) {
      texts++;
      if (!isDeepStrictEqual(JSON.parse(e.json), byId.get(e.id))) {
        disagreements++;
        t.fail(`event ${e.id} (seed ${seed}): its JSON text differs from the event stored: ${e.json}`);
      }
    }
    const counted = await countFilters(db, [f], NOW);
    matched += expected.length;
    const want = expected.slice(0, limit).map((e) => e.id);
    const same =
      JSON.stringify(byMatcher.map((e) => e.id)) === JSON.stringify(expected.map((e) => e.id)) &&
      JSON.stringify(bySql.map((e) => e.id)) === JSON.stringify(want) &&
      counted === expected.length;
    if (!same) {
      disagreements++;
      if (disagreements <= 3) {
        t.fail(
          `filter ${JSON.stringify(f)} (seed ${seed}): reference ${expected.length}, matcher ${byMatcher.length}, SQL ${bySql.length} of limit ${limit}, COUNT ${counted}`,
        );
      }
    }
  }
  // the same reads, a random number of them to a statement
  for (let i = 0; i < asked.length;) {
    const group = asked.slice(i, (i += 1 + int(12)));
    const answers = await queryFilters(
      db,
      group.map((a) => a.read),
      NOW,
    );
    for (const [k, a] of group.entries()) {
      if (JSON.stringify(answers[k]?.map((e) => e.id)) === JSON.stringify(a.ids)) continue;
      disagreements++;
      t.fail(
        `filter ${JSON.stringify(a.read.filter)} (seed ${seed}) read in a group of ${group.length} differs from alone`,
      );
    }
  }
  // COUNT over several filters at once is their union
  for (let n = 0; n < scale(30, 100); n++) {
    const fs = Array.from({ length: 2 + int(3) }, () => randomFilter(events));
    const union = events.filter((e) => fs.some((f) => reference(f, e))).length;
    const counted = await countFilters(db, fs, NOW);
    if (counted !== union) {
      disagreements++;
      t.fail(`COUNT of ${JSON.stringify(fs)} (seed ${seed}) is ${counted}, the union is ${union}`);
    }
  }
  figures(t, 'filter-differential', {
    seed,
    events: count,
    filters,
    eventTexts: texts,
    matchedTotal: matched,
    disagreements,
    storeMs,
    queryMs: Date.now() - queryStarted,
  });
  t.equal(disagreements, 0, `${filters} filters over ${count} events: identical results (seed ${seed})`);
});
