// Stored-event reads (src/core/events/query.ts) on a real PostgreSQL: filters asked together are read in shared
// statements (store/events.ts queryFilters), and each still gets exactly what it would get alone: its own
// matches, newest first, ties by lowest id, cut at its limit.
import t, { type Test } from 'tap';
import { createTestDatabase, createTestPglite } from '../../helpers/db.js';
import { openDatabase } from '../../../src/store/db.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { createQueries } from '../../../src/core/events/query.js';
import { insertBatch } from '../../../src/store/event-batch.js';
import { NO_UPSTREAM } from '../../../src/store/forwarding-plan.js';
import { explainFilter, queryFilter, queryFilters, type FilterRead } from '../../../src/store/events.js';
import { primaryReads, type Reads } from '../../../src/store/read-replica.js';
import type { Knex } from 'knex';
import { upsertUserByPubkey } from '../../../src/store/users.js';
import { newestFirst, type Filter } from '../../../src/nips/filter.js';
import type { NostrEvent } from '../../../src/nips/nip01.js';

const { knex: db, url } = await createTestDatabase(t);
const NOW = Math.floor(Date.now() / 1000);
const authors = Array.from({ length: 12 }, newKey);
const stored: NostrEvent[] = [];
// per author: 6 notes, two of them in the same second (the tie goes to the lower id), and a reaction
for (const [a, key] of authors.entries()) {
  const at = NOW - 1000 + a;
  for (let i = 0; i < 6; i++) {
    stored.push(
      buildEvent(key.sk, {
        kind: 1,
        content: `note ${i}`,
        created_at: at - (i === 5 ? 4 : i) * 10,
        tags: [['t', `topic${a % 3}`]],
      }),
    );
  }
  stored.push(buildEvent(key.sk, { kind: 7, created_at: at, tags: [['e', stored.at(-1)!.id]] }));
}
const { user } = await upsertUserByPubkey(db, authors[0]!.pk);
await insertBatch(
  db,
  stored.map((ev) => ({ ev, extras: { userId: user.id, dTag: null, expiresAt: undefined }, forwarding: NO_UPSTREAM })),
);

/** The primary's reads, counted: one `read` is one statement; `log` has `s<n>` as the nth starts, `e<n>` as it ends. */
function counted(on: Knex = db): { reads: Reads; statements: () => number; log: string[] } {
  const base = primaryReads(on);
  let n = 0;
  const log: string[] = [];
  const reads: Reads = {
    ...base,
    read: async (run, incomplete) => {
      const nth = n++;
      log.push(`s${nth}`);
      try {
        return await base.read(run, incomplete);
      } finally {
        log.push(`e${nth}`);
      }
    },
  };
  return { reads, statements: () => n, log };
}

const limits = { maxLimit: 500, defaultLimit: 100, maxFilterValues: 5000 };
const ids = (evs: readonly { id: string }[]) => evs.map((e) => e.id);

t.test('REQ filters asked in the same turn share statements and each gets what it would alone', async (t) => {
  const { reads, statements } = counted();
  const sizes: number[] = [];
  const queries = createQueries(reads, limits, { now: () => NOW, onStatement: (n) => sizes.push(n) });
  const filters: Filter[] = [
    ...authors.map((a, i): Filter => ({ authors: [a.pk], kinds: [1], limit: 1 + (i % 5) })),
    { kinds: [7], limit: 5 },
    { tags: { t: ['topic1'] }, limit: 7 },
    { ids: [stored[3]!.id, stored[40]!.id] },
    { since: NOW - 1000, until: NOW - 995, limit: 100 },
    { authors: [authors[1]!.pk], limit: 0 },
  ];
  const answers = await Promise.all(filters.map((f) => queries.query([f])));
  t.ok(statements() < filters.length / 2, `${filters.length} filters in ${statements()} statements`);
  t.same(
    sizes.sort((a, b) => b - a),
    [8, 6, 1, 1],
    'the first two read alone (nothing else ran), the rest shared, at most 8 a statement; limit 0 read nothing',
  );
  for (const [i, f] of filters.entries()) {
    const alone = await queryFilter(db, f, Math.min(f.limit ?? 100, 500), NOW);
    t.same(ids(answers[i]!), ids(alone), `filter ${i} as when read alone`);
  }
  t.same(answers[0]!.length, 1);
  t.same(answers[4]!.length, 5, 'the limit of each filter holds in a shared statement');
  t.same(answers.at(-1), [], 'limit 0 reads nothing');
});

t.test('filters binding many values are spread over statements under the parameter limit', async (t) => {
  const { reads, statements } = counted();
  const queries = createQueries(reads, limits, { now: () => NOW });
  // 4,999 keys nobody uses and one real author: 8 such filters bind ~40,000 values, more than one statement takes
  const filler = Array.from({ length: 4999 }, (_, i) => i.toString(16).padStart(64, '0'));
  const filters = authors.slice(0, 8).map((a): Filter => ({ authors: [...filler, a.pk], kinds: [1], limit: 3 }));
  const answers = await Promise.all(filters.map((f) => queries.query([f])));
  t.ok(statements() >= 2, `${statements()} statements`);
  for (const [i, a] of authors.slice(0, 8).entries()) {
    const own = stored.filter((e) => e.pubkey === a.pk && e.kind === 1);
    t.equal(answers[i]!.length, 3);
    t.ok(
      answers[i]!.every((e) => own.some((o) => o.id === e.id)),
      `author ${i} gets only their own notes`,
    );
  }
});

t.test('several filters of one REQ are merged newest first without duplicates', async (t) => {
  const queries = createQueries(primaryReads(db), limits, { now: () => NOW });
  const a = authors[2]!.pk;
  const got = await queries.query([
    { authors: [a], limit: 3 },
    { authors: [a], kinds: [1], limit: 4 },
  ]);
  const each = [
    ...(await queryFilter(db, { authors: [a] }, 3, NOW)),
    ...(await queryFilter(db, { authors: [a], kinds: [1] }, 4, NOW)),
  ];
  const expected = [...new Map(each.map((e) => [e.id, e])).values()].sort(newestFirst);
  t.ok(expected.length < each.length, 'the two filters overlap');
  t.same(ids(got), ids(expected), 'the union of both, each id once, in NIP-01 order');
});

t.test('each answer is the stored event exactly, as JSON text written from its columns', async (t) => {
  const key = newKey();
  const odd = buildEvent(key.sk, {
    kind: 1,
    content: 'quotes " and \\ backslash, a new\nline, a tab\t, \u0001, emoji 🦩, é, \u2028 and </script>',
    tags: [['t', 'ünïcødé'], ['r', 'https://example.com/?a="b"&c=\\d'], ['e', stored[0]!.id, '', 'reply'], ['x'], []],
  });
  const { user: owner } = await upsertUserByPubkey(db, key.pk);
  await insertBatch(db, [
    { ev: odd, extras: { userId: owner.id, dTag: null, expiresAt: undefined }, forwarding: NO_UPSTREAM },
  ]);
  const queries = createQueries(primaryReads(db), limits, { now: () => NOW });
  const [alone] = await queries.query([{ ids: [odd.id] }]);
  t.same(JSON.parse(alone!.json), odd, 'read alone');
  const shared = await Promise.all([
    queries.query([{ authors: [authors[0]!.pk], limit: 1 }]),
    queries.query([{ authors: [authors[1]!.pk], limit: 1 }]),
    queries.query([{ authors: [key.pk] }]),
  ]);
  t.same(JSON.parse(shared[2]![0]!.json), odd, 'read in a shared statement');
  t.equal(shared[2]![0]!.created_at, odd.created_at);
});

t.test('a filter with limit 0 reads nothing stored', async (t) => {
  const { reads, statements } = counted();
  const queries = createQueries(reads, limits, { now: () => NOW });
  t.same(await queries.query([{ authors: [authors[0]!.pk], limit: 0 }]), []);
  t.equal(statements(), 0, 'no statement');
});

t.test('a statement past the timeout: each of its reads is tried alone, and only the one to blame fails', async (t) => {
  // statement_timeout 300 ms, and the tag rows locked by another transaction: a statement that reads them waits
  // past it; the author timelines sharing its statement do not read them and are answered when read alone
  const bounded = await openDatabase({
    databaseUrl: url,
    dataDir: '',
    poolMax: 4,
    limits: { connectMs: 5000, acquireMs: 5000, queryMs: 300 },
  });
  t.teardown(() => bounded.close());
  const { reads, statements, log } = counted(bounded.knex);
  const outcomes: string[] = [];
  const queries = createQueries(reads, limits, { now: () => NOW, onStatement: (_n, _s, o) => outcomes.push(o) });
  const locker = await db.transaction();
  t.teardown(() => locker.rollback());
  await locker.raw('LOCK TABLE nostr_event_tags IN ACCESS EXCLUSIVE MODE');
  const timelines = authors.slice(0, 6).map((a): Filter => ({ authors: [a.pk], kinds: [1], limit: 2 }));
  const results = await Promise.allSettled([
    ...timelines.map((f) => queries.query([f])),
    queries.query([{ tags: { t: ['topic0'] }, limit: 5 }]),
  ]);
  // the first two timelines are read alone at once (nothing else ran), the other four with the tag read
  t.equal(statements(), 8, 'two alone, one shared statement, then each of its five reads alone');
  for (let i = 3; i < 7; i++)
    t.ok(log.indexOf(`e${i}`) < log.indexOf(`s${i + 1}`), `read ${i - 2} alone ends before the next starts`);
  t.same(
    [...outcomes].sort(),
    ['answered', 'answered', 'answered', 'answered', 'answered', 'answered', 'failed', 'failed'],
    'the metrics see the two statements that failed',
  );
  for (const [i, r] of results.slice(0, 6).entries()) {
    t.equal(r.status, 'fulfilled', `timeline ${i} answered`);
    if (r.status === 'fulfilled') t.equal(r.value.length, 2);
  }
  const tagged = results[6]!;
  t.equal(tagged.status, 'rejected', 'the read that waits on the lock fails');
  if (tagged.status === 'rejected') t.match((tagged.reason as { code?: string }).code, '57014');
});

t.test('on the embedded PGlite, reads share its one connection the same way', async (t) => {
  const embedded = (await createTestPglite(t)).knex;
  const { user: owner } = await upsertUserByPubkey(embedded, authors[0]!.pk);
  const mine = stored.filter((e) => e.pubkey === authors[0]!.pk || e.pubkey === authors[1]!.pk);
  await insertBatch(
    embedded,
    mine.map((ev) => ({ ev, extras: { userId: owner.id, dTag: null, expiresAt: undefined }, forwarding: NO_UPSTREAM })),
  );
  const { reads, statements } = counted(embedded);
  const queries = createQueries(reads, limits, { now: () => NOW });
  const filters: Filter[] = [
    { authors: [authors[0]!.pk], kinds: [1], limit: 3 },
    { authors: [authors[1]!.pk], limit: 2 },
    { tags: { t: ['topic1'] }, limit: 4 },
    { kinds: [7], limit: 2 },
  ];
  const answers = await Promise.all(filters.map((f) => queries.query([f])));
  t.equal(statements(), 3, 'the first two read alone, the other two (asked while they ran) in one statement');
  for (const [i, f] of filters.entries()) {
    t.same(ids(answers[i]!), ids(await queryFilter(embedded, f, f.limit!, NOW)), `filter ${i} as when read alone`);
  }
  t.equal(answers[2]!.length, 4, 'author 1 wrote topic1 notes');
});

/** Events of one author for the reads of one author: ties, a removed one, an expired one, and other kinds. */
async function prolificAuthor(on: Knex): Promise<{ pk: string; live: NostrEvent[] }> {
  const key = newKey();
  const notes: NostrEvent[] = [];
  // 40 notes over 20 seconds: two to six in each second, so most limits cut through a second's ties
  for (let i = 0; i < 40; i++) {
    notes.push(
      buildEvent(key.sk, {
        kind: 1,
        content: `n${i}`,
        created_at: NOW - 500 - Math.floor(i / 2) - (i % 7 === 0 ? 1 : 0),
      }),
    );
  }
  const profile = buildEvent(key.sk, { kind: 0, content: '{}', created_at: NOW - 700 });
  const reaction = buildEvent(key.sk, { kind: 7, created_at: NOW - 499, tags: [['e', notes[0]!.id]] });
  const expired = buildEvent(key.sk, { kind: 1, content: 'gone', created_at: NOW - 498 });
  const removed = notes[3]!;
  const { user: owner } = await upsertUserByPubkey(on, key.pk);
  const row = (ev: NostrEvent, expiresAt?: number) => ({
    ev,
    extras: { userId: owner.id, dTag: ev.kind === 0 ? '' : null, expiresAt },
    forwarding: NO_UPSTREAM,
  });
  await insertBatch(on, [...notes.map((ev) => row(ev)), row(profile), row(reaction), row(expired, NOW - 10)]);
  await on('nostr_events')
    .where({ event_id: removed.id })
    .update({ removed_at: on.fn.now(), removed_reason: 'deleted' });
  return { pk: key.pk, live: [...notes.filter((e) => e !== removed), profile, reaction].sort(newestFirst) };
}

type ExpectedRead = { read: FilterRead; expected: string[] };

/** A read and what NIP-01 says it must answer: the live events `has` accepts within its kinds and times, newest first. */
function expectedRead(
  live: readonly NostrEvent[],
  filter: Filter,
  limit: number,
  has: (e: NostrEvent) => boolean,
): ExpectedRead {
  const match = live.filter(
    (e) =>
      has(e) &&
      (filter.kinds === undefined || filter.kinds.includes(e.kind)) &&
      (filter.since === undefined || e.created_at >= filter.since) &&
      (filter.until === undefined || e.created_at <= filter.until),
  );
  return { read: { filter, limit }, expected: ids(match.slice(0, limit)) };
}

/** Reads all in one call, each as expected, and each read alone as expected too. */
async function answeredAsExpected(t: Test, name: string, on: Knex, reads: readonly ExpectedRead[]): Promise<void> {
  const answers = await queryFilters(
    on,
    reads.map((r) => r.read),
    NOW,
  );
  for (const [i, { read, expected }] of reads.entries()) {
    const label = `${name}: ${JSON.stringify({ ...read.filter, authors: read.filter.authors && '[a]' })} limit ${read.limit}`;
    t.same(ids(answers[i]!), expected, label);
    t.same(ids(await queryFilter(on, read.filter, read.limit, NOW)), expected, `${label}, read alone`);
  }
}

/** One author's reads, each with what NIP-01 says it must answer, written here from the events. */
function authorReads(pk: string, live: readonly NostrEvent[]): ExpectedRead[] {
  const reads: ExpectedRead[] = [];
  const add = (filter: Filter, limit: number) => reads.push(expectedRead(live, filter, limit, () => true));
  for (let limit = 1; limit <= 41; limit += 3) add({ authors: [pk], kinds: [1] }, limit);
  for (const limit of [1, 2, 5, 44, 500]) add({ authors: [pk] }, limit);
  add({ authors: [pk], kinds: [0] }, 1);
  add({ authors: [pk], kinds: [3] }, 10);
  add({ authors: [pk], kinds: [1], since: NOW - 505, until: NOW - 501 }, 4);
  add({ authors: [pk], since: NOW - 512 }, 100);
  add({ authors: [pk], until: NOW - 510 }, 7);
  add({ authors: [pk], kinds: [1], until: NOW - 600 }, 7);
  return reads;
}

t.test("one author's reads, of a kind or of any, are answered by one statement as NIP-01 orders them", async (t) => {
  for (const [name, on] of [
    ['PostgreSQL', db],
    ['PGlite', (await createTestPglite(t)).knex],
  ] as const) {
    const { pk, live } = await prolificAuthor(on);
    const reads = authorReads(pk, live);
    await answeredAsExpected(t, name, on, reads);
    // the same reads mixed with others: each still gets its own answer, in the order asked
    const mixed: FilterRead[] = [
      { filter: { kinds: [7] }, limit: 3 },
      reads[4]!.read,
      { filter: { authors: [pk, authors[0]!.pk], kinds: [1] }, limit: 5 },
      reads[15]!.read,
    ];
    const got = await queryFilters(on, mixed, NOW);
    for (const [i, r] of mixed.entries()) {
      t.same(ids(got[i]!), ids(await queryFilter(on, r.filter, r.limit, NOW)), `${name}: mixed read ${i}`);
    }
  }
});

/** Replies and reactions to one note, and notes with one hashtag, from several authors: ties, a removed one, an expired one. */
async function taggedEvents(on: Knex): Promise<{ note: string; live: NostrEvent[] }> {
  const note = newKey().pk; // any 64-hex value serves as the id a thread names
  const keys = Array.from({ length: 4 }, newKey);
  const events: NostrEvent[] = [];
  for (let i = 0; i < 36; i++) {
    const tags = i % 3 === 2 ? [['t', 'nostr']] : [['e', note], ...(i % 4 === 0 ? [['t', 'nostr']] : [])];
    events.push(
      buildEvent(keys[i % 4]!.sk, {
        kind: i % 2 ? 7 : 1,
        tags,
        content: `r${i}`,
        created_at: NOW - 300 - Math.floor(i / 3),
      }),
    );
  }
  events.push(buildEvent(keys[0]!.sk, { kind: 1, tags: [['t', 'Nostr']], created_at: NOW - 290 })); // another value
  const expired = buildEvent(keys[1]!.sk, { kind: 1, tags: [['e', note]], created_at: NOW - 280 });
  const removed = events[4]!;
  const { user: owner } = await upsertUserByPubkey(on, keys[0]!.pk);
  const row = (ev: NostrEvent, expiresAt?: number) => ({
    ev,
    extras: { userId: owner.id, dTag: null, expiresAt },
    forwarding: NO_UPSTREAM,
  });
  await insertBatch(on, [...events.map((ev) => row(ev)), row(expired, NOW - 10)]);
  await on('nostr_events')
    .where({ event_id: removed.id })
    .update({ removed_at: on.fn.now(), removed_reason: 'deleted' });
  return { note, live: events.filter((e) => e !== removed).sort(newestFirst) };
}

/** One tag value's reads, each with what NIP-01 says it must answer, written here from the events. */
function tagReads(note: string, live: readonly NostrEvent[]): ExpectedRead[] {
  const reads: ExpectedRead[] = [];
  const add = (filter: Filter, limit: number) => {
    const [[name, values]] = Object.entries(filter.tags!) as [[string, string[]]];
    reads.push(expectedRead(live, filter, limit, (e) => e.tags.some((tag) => tag[0] === name && tag[1] === values[0])));
  };
  for (let limit = 1; limit <= 25; limit += 4) add({ tags: { e: [note] } }, limit);
  for (const limit of [1, 3, 8, 100]) add({ tags: { e: [note] }, kinds: [7] }, limit);
  for (const limit of [2, 5, 500]) add({ tags: { t: ['nostr'] } }, limit);
  add({ tags: { t: ['Nostr'] } }, 10);
  add({ tags: { t: ['nostr'] }, kinds: [1], since: NOW - 305, until: NOW - 302 }, 3);
  add({ tags: { e: [note] }, until: NOW - 306 }, 4);
  add({ tags: { p: [note] } }, 10);
  return reads;
}

t.test("one tag value's reads, of a kind or of any, are answered by one statement as NIP-01 orders them", async (t) => {
  for (const [name, on] of [
    ['PostgreSQL', db],
    ['PGlite', (await createTestPglite(t)).knex],
  ] as const) {
    const { note, live } = await taggedEvents(on);
    const reads = tagReads(note, live);
    t.ok(reads[0]!.expected.length === 1 && reads.at(-2)!.expected.length > 0, 'the fixture matches');
    await answeredAsExpected(t, name, on, reads);
  }
});

t.test("the plan of one author's read scans an index led by the author and stops at the limit", async (t) => {
  const { pk } = await prolificAuthor(db);
  // a store of many authors and tag values, as the plan is made for one: on a table of a dozen authors PostgreSQL may
  // as well scan the kind's index, and a few hundred tag rows (a few pages either way)
  const hex = (n: number, i: number) => `${n.toString(16).padStart(8, '0')}${i.toString(16).padStart(56, '0')}`;
  const { user: filler } = await upsertUserByPubkey(db, newKey().pk);
  const others = Array.from({ length: 3000 }, (_, i): NostrEvent => ({
    id: hex(7, i),
    pubkey: hex(9, i % 300),
    created_at: NOW - 10_000 + i,
    kind: [1, 1, 1, 7, 6, 3][i % 6]!,
    tags: [
      ['e', hex(11, i % 1000)],
      ['t', `topic${i % 50}`],
    ],
    content: '',
    sig: '0'.repeat(128),
  }));
  await insertBatch(
    db,
    others.map((ev) => ({
      ev,
      extras: { userId: filler.id, dTag: null, expiresAt: undefined },
      forwarding: NO_UPSTREAM,
    })),
  );
  await db.raw('ANALYZE nostr_events');
  // an author is estimated from the statistics of the index's expression, which PostgreSQL uses only for an index
  // without a predicate (migration 0031): without them a read of several authors was planned as a scan of a kind
  const { rows: stats } = (await db.raw(
    `SELECT n_distinct FROM pg_stats WHERE tablename = 'idx_nostr_events_author_kind'`,
  )) as { rows: { n_distinct: number }[] };
  t.equal(stats.length, 1, "ANALYZE keeps the statistics of the authors' keys");
  const plan = (await explainFilter(db, { authors: [pk], kinds: [1] }, 5, NOW, 'REQ')).join('\n');
  t.match(plan, /Index Scan using idx_nostr_events_author_kind/, 'by (pubkey, kind)');
  t.notMatch(plan, /Seq Scan on nostr_events/);
  // a read of any kind: the author's kinds found in the same index one probe each, then each kind as above
  const anyKind = (await explainFilter(db, { authors: [pk] }, 5, NOW, 'REQ')).join('\n');
  t.match(anyKind, /Recursive Union/, "the author's kinds, one probe each");
  t.notMatch(anyKind, /Seq Scan on nostr_events/);
  t.same(
    [
      ...new Set(
        [...anyKind.matchAll(/(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)/g)].map(
          (m) => m[1],
        ),
      ),
    ],
    ['idx_nostr_events_author_kind'],
    'every scan of the events by the index led by (pubkey, kind)',
  );
  // the first scan stops at the limit (5 of the 39 live notes), the second reads from the cutoff's second on
  t.match(plan, /Index Scan using idx_nostr_events_author_kind[^\n]*rows=5 loops=1/);
  const { note } = await taggedEvents(db);
  await db.raw('ANALYZE nostr_event_tags');
  await db.raw('ANALYZE nostr_events');
  const thread = (await explainFilter(db, { tags: { e: [note] } }, 3, NOW, 'REQ')).join('\n');
  // newest first from the key, stopping after the limit's rows and the removed and expired ones it passes: the expired
  // reply is the newest, the removed one shares its second with a live one, so 4 or 5 tag rows (of 25) as the ids fall
  const scan = /Index Scan Backward using nostr_event_tags_pkey[^\n]*rows=(\d+) loops=1/.exec(thread);
  t.ok(scan, 'a tag value: its key');
  t.ok(Number(scan?.[1]) <= 5, `stops at the limit: ${scan?.[1]} tag rows read`);
  t.notMatch(thread, /Seq Scan/);
  // events by id: the hash index that keeps an id unique (migration 0029), a bitmap scan for a list of them
  const byIds = (await explainFilter(db, { ids: [note, others[0]!.id] }, 2, NOW, 'REQ')).join('\n');
  t.match(byIds, /Bitmap Index Scan on nostr_events_event_id_excl/, 'ids: the hash index');
  t.notMatch(byIds, /Seq Scan/);
});
