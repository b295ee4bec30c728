// The event store: nostr_events (one row per stored event, kept exactly as signed) and nostr_event_tags (the
// first value of every single-letter tag, for #x filters). Rows are never updated in place: a replaced or
// deleted event gets removed_at, and only rows with removed_at IS NULL are served.
import type { Knex } from 'knex';
import { eventJson, type EventText, type NostrEvent } from '../nips/nip01.js';
import { newestFirst, type Filter } from '../nips/filter.js';
import { EventDeletion, keptOver } from '../nips/kinds.js';
import { canBeDeletedByRequest, deletionTargets } from '../nips/nip09.js';
import { arrayColumns } from './array-columns.js';
import { numbered, queryPrepared } from './db.js';

export type SaveOutcome =
  | { readonly status: 'inserted'; readonly rowId: string }
  | { readonly status: 'duplicate' }
  /** A newer version of this replaceable/addressable event is stored (or one with the same time and lower id). */
  | { readonly status: 'superseded' }
  /** The author already deleted this event (NIP-09); it is not stored again. */
  | { readonly status: 'deleted' };

export interface EventRowExtras {
  readonly userId: string;
  /** Replace key: '' for replaceable kinds, the d value for addressable kinds, null for regular ones. */
  readonly dTag: string | null;
  readonly expiresAt: number | undefined;
  readonly sourcePlatform?: string | undefined;
  readonly tweet?: { id?: string; url?: string; text?: string; username?: string } | undefined;
}

/** The columns that hold an event exactly as it was signed. */
export interface EventRow {
  event_id: string;
  pubkey: string;
  created_at_nostr: string | number;
  event_kind: number;
  tags: string[][] | string;
  content: string;
  sig: string;
}

const eventColumns = ['event_id', 'pubkey', 'created_at_nostr', 'event_kind', 'tags', 'content', 'sig'] as const;

/** The signature, stored as its 64 bytes (migration 0027), as the hex NIP-01 gives it: `alias` is the events' row. */
export function sigText(alias: string): string {
  return `encode(${alias}.sig, 'hex')`;
}

/**
 * The select list of an event's columns in nostr_events `alias` as a read sends them (the signature in hex, the tags
 * as their text), in eventColumns' order: the one list every statement that answers a REQ or an export reads.
 */
function eventTextSelect(alias: string): string {
  const column = (c: (typeof eventColumns)[number]) =>
    c === 'sig' ? `${sigText(alias)} as sig` : c === 'tags' ? `${alias}.tags::text as tags` : `${alias}.${c}`;
  return eventColumns.map(column).join(', ');
}

export function rowToEvent(row: EventRow): NostrEvent {
  return {
    id: row.event_id,
    pubkey: row.pubkey,
    created_at: Number(row.created_at_nostr),
    kind: row.event_kind,
    tags: typeof row.tags === 'string' ? (JSON.parse(row.tags) as string[][]) : row.tags,
    content: row.content,
    sig: row.sig,
  };
}

/** Longer tag values are not indexed (a btree entry is capped near 2.7 kB); #x filters cannot find them. */
const MAX_INDEXED_TAG_BYTES = 512;

/** The first value of each single-letter tag, once per (name, value): what #x filters match on. */
export function indexedTags(ev: NostrEvent): { name: string; value: string }[] {
  const seen = new Set<string>();
  const out: { name: string; value: string }[] = [];
  for (const tag of ev.tags) {
    const [name, value] = tag;
    if (name === undefined || value === undefined || name.length !== 1 || !/[a-zA-Z]/.test(name)) continue;
    if (value.length > MAX_INDEXED_TAG_BYTES / 4 && Buffer.byteLength(value) > MAX_INDEXED_TAG_BYTES) continue;
    const key = `${name}\u0000${value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name, value });
  }
  return out;
}

/**
 * The arbiter of an insert's duplicate check (`ON CONFLICT … DO NOTHING`): the exclusion constraint that keeps an event
 * id unique through a hash index (migration 0029). Naming it leaves any other conflict (a replaceable event's address)
 * an error, which the caller retries.
 */
export const EVENT_ID_UNIQUE = 'ON CONSTRAINT nostr_events_event_id_excl';

function insertRow(db: Knex, ev: NostrEvent, extras: EventRowExtras): Record<string, unknown> {
  return {
    user_id: extras.userId,
    event_id: ev.id,
    pubkey: ev.pubkey,
    event_kind: ev.kind,
    created_at_nostr: ev.created_at,
    content: ev.content,
    tags: JSON.stringify(ev.tags),
    sig: db.raw("decode(?, 'hex')", [ev.sig]),
    d_tag: extras.dTag,
    expires_at: extras.expiresAt ?? null,
    source_platform: extras.sourcePlatform ?? null,
    original_tweet_id: extras.tweet?.id ?? null,
    original_tweet_url: extras.tweet?.url ?? null,
    original_tweet_text: extras.tweet?.text ?? null,
    original_username: extras.tweet?.username ?? null,
  };
}

/**
 * An event's author as the index of an author's reads holds it (its 32 bytes, migration 0031): `alias` is the events'
 * row. A read by author compares it with `decode(?, 'hex')`, or the index is not used.
 */
const authorKey = (alias: string): string => `decode(${alias}.pubkey, 'hex')`;

/** A tag value as nostr_event_tags stores it (bytes: `nostrx_tag_key`, migration 0030), to write or look up. */
function tagKey(db: Knex, value: string): Knex.Raw {
  return db.raw('nostrx_tag_key(?)', [value]);
}

async function insertTags(trx: Knex, rowId: string, ev: NostrEvent): Promise<void> {
  const tags = indexedTags(ev);
  if (tags.length === 0) return;
  await trx('nostr_event_tags').insert(
    tags.map((t) => ({
      event_row_id: rowId,
      name: t.name,
      value: tagKey(trx, t.value),
      created_at_nostr: ev.created_at,
      event_kind: ev.kind,
    })),
  );
}

/** True when a live kind-5 event by the same author names this event by id (e tag) or address (a tag). */
async function deletedByAuthor(trx: Knex, ev: NostrEvent, dTag: string | null): Promise<boolean> {
  const byId = trx('nostr_event_tags as t')
    .join('nostr_events as d', 'd.id', 't.event_row_id')
    .where({ 't.name': 'e', 'd.event_kind': EventDeletion, 'd.pubkey': ev.pubkey })
    .where('t.value', tagKey(trx, ev.id))
    .whereNull('d.removed_at')
    .select(trx.raw('1'));
  const query =
    dTag === null
      ? byId
      : byId.union(
          trx('nostr_event_tags as t')
            .join('nostr_events as d', 'd.id', 't.event_row_id')
            .where({ 't.name': 'a', 'd.event_kind': EventDeletion, 'd.pubkey': ev.pubkey })
            .where('t.value', tagKey(trx, `${ev.kind}:${ev.pubkey}:${dTag}`))
            .where('d.created_at_nostr', '>=', ev.created_at)
            .whereNull('d.removed_at')
            .select(trx.raw('1')),
        );
  const rows = (await query.limit(1)) as unknown[];
  return rows.length > 0;
}

/**
 * Stores one event inside the caller's transaction. Regular events: insert unless the id exists. Replaceable and
 * addressable events: the live version for (pubkey, kind, d) is locked and replaced only by a newer one (equal
 * created_at: the lower id wins, NIP-01). A concurrent first insert of the same address surfaces as a unique
 * violation (23505), which the caller retries.
 */
export async function saveEvent(trx: Knex.Transaction, ev: NostrEvent, extras: EventRowExtras): Promise<SaveOutcome> {
  if (canBeDeletedByRequest(ev.kind) && (await deletedByAuthor(trx, ev, extras.dTag))) {
    const exists = (await trx('nostr_events').where({ event_id: ev.id }).first('id')) as { id: string } | undefined;
    return exists ? { status: 'duplicate' } : { status: 'deleted' };
  }
  if (extras.dTag !== null) {
    const current = (await trx('nostr_events')
      .where({ pubkey: ev.pubkey, event_kind: ev.kind, d_tag: extras.dTag })
      .whereNull('removed_at')
      .forUpdate()
      .first('id', 'event_id', 'created_at_nostr')) as
      { id: string; event_id: string; created_at_nostr: string } | undefined;
    if (current) {
      if (current.event_id === ev.id) return { status: 'duplicate' };
      if (keptOver({ created_at: Number(current.created_at_nostr), id: current.event_id }, ev))
        return { status: 'superseded' };
      await trx('nostr_events')
        .where({ id: current.id })
        .update({ removed_at: trx.fn.now(), removed_reason: 'replaced', updated_at: trx.fn.now() });
    }
  }
  const inserted = (await trx('nostr_events')
    .insert(insertRow(trx, ev, extras))
    .onConflict(trx.raw(EVENT_ID_UNIQUE))
    .ignore()
    .returning('id')) as { id: string }[];
  const rowId = inserted[0]?.id;
  if (rowId === undefined) return { status: 'duplicate' };
  await insertTags(trx, rowId, ev);
  return { status: 'inserted', rowId };
}

/**
 * NIP-09: what these stored deletions (kind 5) name, removed: their authors' own events named by id, and by address
 * up to the deletion's created_at; never a deletion (nips/nip09.ts canBeDeletedByRequest). Two statements however
 * many deletions (one for the ids, one for the addresses; an import's batch stores its deletions together). No
 * deletion depends on another's removals, since a deletion is never removed by one, so taking them at once removes
 * what taking them in turn would.
 */
export async function deleteReferenced(trx: Knex.Transaction, deletions: readonly NostrEvent[]): Promise<void> {
  const named = deletions.map((d) => ({ author: d.pubkey, targets: deletionTargets(d), createdAt: d.created_at }));
  const ids = named.flatMap((d) => d.targets.ids.map((id) => ({ author: d.author, id })));
  const addresses = named.flatMap((d) =>
    d.targets.addresses
      .filter((a) => a.pubkey === d.author && canBeDeletedByRequest(a.kind))
      .map((a) => ({ ...a, createdAt: d.createdAt })),
  );
  const mark = `removed_at = now(), removed_reason = 'deleted', updated_at = now()`;
  if (ids.length > 0) {
    const col = arrayColumns(trx, ids);
    await trx.raw(
      `UPDATE nostr_events e SET ${mark}
       FROM unnest(CAST(? AS text[]), CAST(? AS text[])) AS t (author, event_id)
       WHERE e.event_id = t.event_id AND e.pubkey = t.author AND e.event_kind <> ${EventDeletion} AND e.removed_at IS NULL`,
      [col((x) => x.author), col((x) => x.id)],
    );
  }
  if (addresses.length > 0) {
    const col = arrayColumns(trx, addresses);
    await trx.raw(
      `UPDATE nostr_events e SET ${mark}
       FROM unnest(CAST(? AS text[]), CAST(? AS int[]), CAST(? AS text[]), CAST(? AS bigint[]))
         AS t (author, kind, d, created_at)
       WHERE e.pubkey = t.author AND e.event_kind = t.kind AND e.d_tag = t.d AND e.created_at_nostr <= t.created_at
         AND e.removed_at IS NULL`,
      [col((a) => a.pubkey), col((a) => a.kind), col((a) => a.d), col((a) => a.createdAt)],
    );
  }
}

function applyFilter<Q extends Knex.QueryBuilder>(q: Q, db: Knex, f: Filter, nowSeconds: number): Q {
  q.whereNull('e.removed_at').where((w) => {
    w.whereNull('e.expires_at').orWhere('e.expires_at', '>', nowSeconds);
  });
  if (f.ids) q.whereIn('e.event_id', f.ids);
  // as whereIn writes an empty list: no author, no event
  if (f.authors?.length === 0) q.whereRaw('1 = 0');
  else if (f.authors)
    q.whereRaw(`${authorKey('e')} in (${f.authors.map(() => "decode(?, 'hex')").join(', ')})`, f.authors);
  if (f.kinds) q.whereIn('e.event_kind', f.kinds);
  if (f.since !== undefined) q.where('e.created_at_nostr', '>=', f.since);
  if (f.until !== undefined) q.where('e.created_at_nostr', '<=', f.until);
  // each a look-up of the tag rows' key (name, value, created_at, event row): the row carries its event's created_at
  for (const [name, values] of Object.entries(f.tags ?? {})) {
    q.whereExists(
      db('nostr_event_tags as t')
        .select(db.raw('1'))
        .where('t.name', name)
        .whereIn(
          't.value',
          values.map((v) => tagKey(db, v)),
        )
        .whereRaw('t.created_at_nostr = e.created_at_nostr')
        .whereRaw('t.event_row_id = e.id'),
    );
  }
  return q;
}

/** A row read for a REQ answer: the event's columns, its tags as JSON text. */
interface EventTextRow extends EventRow {
  tags: string;
}

function rowToText(row: EventTextRow): EventText {
  const created = Number(row.created_at_nostr);
  return {
    id: row.event_id,
    created_at: created,
    json: eventJson(
      {
        id: row.event_id,
        pubkey: row.pubkey,
        created_at: created,
        kind: row.event_kind,
        content: row.content,
        sig: row.sig,
      },
      row.tags,
    ),
  };
}

/** The columns of a REQ answer: tags as text, which is written into the answer as it is (not parsed, not written again). */
const textColumns = (db: Knex) => db.raw(eventTextSelect('e'));

function filterQuery(db: Knex, f: Filter, limit: number, nowSeconds: number): Knex.QueryBuilder {
  return applyFilter(db('nostr_events as e').select(textColumns(db)), db, f, nowSeconds)
    .orderBy([
      { column: 'e.created_at_nostr', order: 'desc' },
      { column: 'e.event_id', order: 'asc' },
    ])
    .limit(limit);
}

/** Live events matching one filter, newest first, ties by lowest id (NIP-01), at most `limit`, as JSON text. */
export async function queryFilter(db: Knex, f: Filter, limit: number, nowSeconds: number): Promise<EventText[]> {
  if (limit <= 0) return [];
  const rows = (await filterQuery(db, f, limit, nowSeconds)) as EventTextRow[];
  return rows.map(rowToText);
}

/** One filter's read in a batch: at most `limit` of its live events. */
export interface FilterRead {
  readonly filter: Filter;
  readonly limit: number;
}

/**
 * A read of one author's events, or of the events carrying one tag value, of one kind or of any: the shape of nearly
 * every timeline, profile, thread, reaction count and mention a client asks for. These are read by a prepared
 * statement (AUTHOR_READS, AUTHOR_ANY_KIND_READS or TAG_READS), whatever their number in a batch.
 */
interface SimpleRead {
  readonly i: number;
  readonly author: string | null;
  readonly tag_name: string | null;
  readonly tag_value: string | null;
  readonly kind: number | null;
  readonly since: number | null;
  readonly until: number | null;
  readonly lim: number;
}

function simpleRead({ filter: f, limit }: FilterRead, i: number): SimpleRead | undefined {
  if (f.ids !== undefined || (f.kinds !== undefined && f.kinds.length !== 1)) return undefined;
  const tags = Object.entries(f.tags ?? {});
  const read = { i, kind: f.kinds?.[0] ?? null, since: f.since ?? null, until: f.until ?? null, lim: limit };
  if (f.authors?.length === 1 && tags.length === 0) {
    return { ...read, author: f.authors[0]!, tag_name: null, tag_value: null };
  }
  const [name, values] = tags[0] ?? [];
  if (f.authors === undefined && tags.length === 1 && values?.length === 1) {
    return { ...read, author: null, tag_name: name!, tag_value: values[0]! };
  }
  return undefined;
}

// The reads come as one JSON array (one row each) and each is answered by a `LATERAL` subquery: one statement text for
// any number of reads, prepared once per connection. A statement planned for its values costs PostgreSQL 0.2–0.45 ms
// of planning for 0.05–0.17 ms of work (docs/benchmarks.md, "One author's or one tag value's reads in a prepared
// statement"); this one is planned once. Its plan is generic, so it must be right for any author or tag value, rare
// or common, which is why each read takes two index scans in the order of the index, each stopping after `lim` rows:
// the first finds the created_at of the lim-th newest event (the cutoff), the second reads the events from the cutoff
// on, sorts them by (created_at DESC, id) and keeps lim. A sort alone would read every match first: a generic plan
// cannot tell that an incremental sort pays. Events sharing the cutoff's second are all read, so the lowest ids win
// the last places (NIP-01). The branches: an author and a kind (the index led by (pubkey, kind)), an author of any
// kind (the same index, a kind at a time), a tag value (the tag rows' key, (name, value, created_at), its kind checked
// on the tag row). A kind alone is not among them: nothing here would keep a generic plan from scanning the newest
// events for a rare kind. `rows` is the relation the reads come from (`r`, or author_kinds below).
function preparedBranch(which: string, source: string, match: string, at: string, rows = 'r'): string {
  const bounded = `${match} and e.removed_at is null and (e.expires_at is null or e.expires_at > r.now)
      and ${at} <= coalesce(r.until, ${Number.MAX_SAFE_INTEGER})`;
  return `select r.i as nostrx_read, ${eventTextSelect('e')}
  from ${rows} r
  cross join lateral (
    select min(c.at) as cutoff from (
      select ${at} as at from ${source}
      where ${bounded} and ${at} >= coalesce(r.since, 0)
      order by ${at} desc limit r.lim) c) k
  cross join lateral (
    select e.* from ${source}
    where ${bounded} and ${at} >= k.cutoff
    order by e.created_at_nostr desc, e.event_id asc limit r.lim) e
  where ${which}`;
}

/** Bound: the time now in seconds, then the reads as a JSON array of SimpleRead; `more`: CTEs after `r`. */
function readsOf(branches: readonly string[], more = ''): string {
  return `with ${more ? 'recursive ' : ''}r as (
    select r.*, ?::bigint as now
    from jsonb_to_recordset(?::jsonb)
      as r(i int, author text, tag_name text, tag_value text, kind int, since bigint, until bigint, lim int))${more}
  ${branches.join(' union all ')}`;
}

const ofAuthorKind = (rows: string) =>
  preparedBranch(
    'r.author is not null and r.kind is not null',
    'nostr_events e',
    `${authorKey('e')} = decode(r.author, 'hex') and e.event_kind = r.kind`,
    'e.created_at_nostr',
    rows,
  );

// Three statements, so that each reads only the tables its reads need (a lock held on the tag rows, by a migration
// or a VACUUM FULL, must not hold up a timeline) and a timeline's statement does not carry the any-kind machinery.
const AUTHOR_READS = readsOf([ofAuthorKind('r')]);

// An author's reads of any kind have no index of their own (one led by pubkey alone would be ~140 bytes more per
// stored event, docs/benchmarks.md "A leaner event store"): the author's kinds are found in the index led by
// (pubkey, kind), one probe each (a loose index scan: the smallest kind, then the smallest above it …), each kind's
// newest `lim` are read as a read of that kind is, and the newest `lim` of them all kept.
const AUTHOR_ANY_KIND_READS = readsOf(
  [
    `select b.nostrx_read, ${eventColumns.map((c) => `b.${c}`).join(', ')}
    from (
      select b.*, row_number() over (
        partition by b.nostrx_read order by b.created_at_nostr desc, b.event_id asc) as n
      from (${ofAuthorKind('author_kinds')}) b) b
    join r on r.i = b.nostrx_read
    where b.n <= r.lim`,
  ],
  `,
  author_kinds as (
    select r.i, r.author, r.since, r.until, r.lim, r.now,
      (select min(e.event_kind) from nostr_events e
        where ${authorKey('e')} = decode(r.author, 'hex') and e.removed_at is null) as kind
    from r
    union all
    select k.i, k.author, k.since, k.until, k.lim, k.now,
      (select min(e.event_kind) from nostr_events e
        where ${authorKey('e')} = decode(k.author, 'hex') and e.removed_at is null and e.event_kind > k.kind)
    from author_kinds k where k.kind is not null)`,
);
const TAG_READS = readsOf([
  preparedBranch(
    'true',
    'nostr_event_tags t join nostr_events e on e.id = t.event_row_id',
    't.name = r.tag_name and t.value = nostrx_tag_key(r.tag_value) and (r.kind is null or t.event_kind = r.kind)',
    't.created_at_nostr',
  ),
]);

/** The prepared statements and the reads each takes; `text` with `?` (knex, EXPLAIN), `numbered` with `$n`, once. */
const PREPARED_READS = [
  { name: 'nostrx_author_reads', text: AUTHOR_READS, takes: (r: SimpleRead) => r.author !== null && r.kind !== null },
  {
    name: 'nostrx_author_any_kind_reads',
    text: AUTHOR_ANY_KIND_READS,
    takes: (r: SimpleRead) => r.author !== null && r.kind === null,
  },
  { name: 'nostrx_tag_reads', text: TAG_READS, takes: (r: SimpleRead) => r.author === null },
].map((s) => ({ ...s, numbered: numbered(s.text) }));

const statementOf = (read: SimpleRead) => PREPARED_READS.find((s) => s.takes(read))!;

type ReadRow = EventTextRow & { nostrx_read: number };

/** The reads in their prepared statements: one round trip for each statement the batch's reads need. */
async function readSimple(db: Knex, reads: readonly SimpleRead[], nowSeconds: number): Promise<ReadRow[]> {
  const rows: ReadRow[] = [];
  for (const statement of PREPARED_READS) {
    const these = reads.filter(statement.takes);
    if (these.length === 0) continue;
    const values = [nowSeconds, JSON.stringify(these)];
    rows.push(...(await queryPrepared<ReadRow>(db, statement.name, statement.numbered, values)));
  }
  return rows;
}

/** The other reads in one statement: each filter's query, planned for its own values, a branch of a UNION ALL. */
async function readBranches(
  db: Knex,
  reads: readonly { read: FilterRead; i: number }[],
  nowSeconds: number,
): Promise<ReadRow[]> {
  const branches: string[] = [];
  const bindings: Knex.Value[] = [];
  for (const { read, i } of reads) {
    const { sql, bindings: values } = filterQuery(db, read.filter, read.limit, nowSeconds).toSQL();
    branches.push(`select ${i} as nostrx_read, b.* from (${sql}) b`);
    bindings.push(...(values as Knex.Value[]));
  }
  if (branches.length === 0) return [];
  const { rows } = (await db.raw(branches.join(' union all '), bindings)) as { rows: ReadRow[] };
  return rows;
}

/**
 * queryFilter for several filters in few round trips, the answers in the order of `reads`: one author's reads in a
 * prepared statement (of a kind, or of any), one tag value's in another, the others in one statement of a branch
 * each. One round trip and one wake-up of a backend for many reads of a sort.
 */
export async function queryFilters(db: Knex, reads: readonly FilterRead[], nowSeconds: number): Promise<EventText[][]> {
  const answers: EventText[][] = reads.map(() => []);
  const simple: SimpleRead[] = [];
  const others: { read: FilterRead; i: number }[] = [];
  reads.forEach((read, i) => {
    if (read.limit <= 0) return;
    const one = simpleRead(read, i);
    if (one) simple.push(one);
    else others.push({ read, i });
  });
  if (simple.length > 0) {
    for (const row of await readSimple(db, simple, nowSeconds)) answers[row.nostrx_read]?.push(rowToText(row));
  }
  if (others.length === 1) {
    const { read, i } = others[0]!;
    answers[i] = await queryFilter(db, read.filter, read.limit, nowSeconds);
  } else {
    for (const row of await readBranches(db, others, nowSeconds)) answers[row.nostrx_read]?.push(rowToText(row));
  }
  // a branch's ORDER BY holds inside it; the order of a UNION ALL's rows is not promised, so it is made again
  for (const events of answers) if (events.length > 1) events.sort(newestFirst);
  return answers;
}

/**
 * The plan PostgreSQL follows for the statement a REQ (queryFilters: the prepared statement of a SimpleRead, or
 * queryFilter's) or a COUNT (countFilters) of `f` is read with, run once (EXPLAIN ANALYZE, BUFFERS), one text line per
 * plan line: the benchmarks show with it which index each read uses.
 */
export async function explainFilter(
  db: Knex,
  f: Filter,
  limit: number,
  nowSeconds: number,
  as: 'REQ' | 'COUNT',
): Promise<string[]> {
  const simple = as === 'REQ' ? simpleRead({ filter: f, limit }, 0) : undefined;
  if (simple) return explainText(db, statementOf(simple).text, [nowSeconds, JSON.stringify([simple])]);
  return explain(db, as === 'REQ' ? filterQuery(db, f, limit, nowSeconds) : countQuery(db, [f], nowSeconds));
}

async function explain(db: Knex, q: Knex.QueryBuilder): Promise<string[]> {
  const { sql, bindings } = q.toSQL();
  return explainText(db, sql, bindings);
}

async function explainText(db: Knex, sql: string, bindings: readonly Knex.Value[]): Promise<string[]> {
  const { rows } = (await db.raw(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, bindings)) as {
    rows: { 'QUERY PLAN': string }[];
  };
  return rows.map((r) => r['QUERY PLAN']);
}

function matchingAny(db: Knex, filters: Filter[], nowSeconds: number): Knex.QueryBuilder {
  return db('nostr_events as e').where((any) => {
    for (const f of filters) {
      any.orWhere((w) => {
        applyFilter(w, db, f, nowSeconds);
      });
    }
  });
}

/** False for a database no migration has created the event store in (a new DATA_DIR, a wrong DATABASE_URL). */
export async function eventStoreExists(db: Knex): Promise<boolean> {
  const { rows } = (await db.raw("select to_regclass('nostr_events') is not null as present")) as {
    rows: { present: boolean }[];
  };
  return rows[0]?.present === true;
}

/** Where an export page starts: after this event in export order. */
export interface ExportCursor {
  readonly createdAt: number;
  readonly id: string;
}

function exportPageQuery(
  db: Knex,
  f: Filter,
  after: ExportCursor | undefined,
  pageSize: number,
  nowSeconds: number,
): Knex.QueryBuilder {
  const q = applyFilter(db('nostr_events as e').select(textColumns(db)), db, f, nowSeconds)
    .orderBy([
      { column: 'e.created_at_nostr', order: 'asc' },
      { column: 'e.event_id', order: 'desc' },
    ])
    .limit(pageSize);
  if (!after) return q;
  // the bound on created_at alone is what the index scan starts from: with only the OR below, PostgreSQL scans (and
  // fetches the rows of) every event before the cursor again for each page, quadratic in the store's size
  return q.where('e.created_at_nostr', '>=', after.createdAt).where((w) => {
    w.where('e.created_at_nostr', '>', after.createdAt).orWhere((same) => {
      same.where('e.created_at_nostr', after.createdAt).where('e.event_id', '<', after.id);
    });
  });
}

/**
 * Live events matching one filter (its limit ignored: the caller counts), oldest first, one page after `after`.
 * The order is created_at ascending and, within a second, id descending: the live indexes (created_at DESC, …) read
 * backwards, so each page is an index range scan from the cursor however large the store, without an OFFSET.
 */
export async function exportPage(
  db: Knex,
  f: Filter,
  after: ExportCursor | undefined,
  pageSize: number,
  nowSeconds: number,
): Promise<EventText[]> {
  const rows = (await exportPageQuery(db, f, after, pageSize, nowSeconds)) as EventTextRow[];
  return rows.map(rowToText);
}

/** The plan of exportPage's statement (EXPLAIN ANALYZE, BUFFERS), one text line per plan line. */
export async function explainExportPage(
  db: Knex,
  f: Filter,
  after: ExportCursor | undefined,
  pageSize: number,
  nowSeconds: number,
): Promise<string[]> {
  return explain(db, exportPageQuery(db, f, after, pageSize, nowSeconds));
}

/**
 * NIP-77: created_at and id of the live events matching any of the filters (each filter's own limit keeps its
 * newest), at most `max` + 1 per filter, so a caller can tell "more than max" without reading them all.
 */
export async function liveIdsMatching(
  db: Knex,
  filters: readonly Filter[],
  max: number,
  nowSeconds: number,
): Promise<{ createdAt: number; id: string }[]> {
  const seen = new Map<string, number>();
  for (const f of filters) {
    const rows = (await applyFilter(
      db('nostr_events as e').select('e.created_at_nostr', 'e.event_id'),
      db,
      f,
      nowSeconds,
    )
      .orderBy([
        { column: 'e.created_at_nostr', order: 'desc' },
        { column: 'e.event_id', order: 'asc' },
      ])
      .limit(Math.min(f.limit ?? Infinity, max + 1))) as { created_at_nostr: string | number; event_id: string }[];
    for (const r of rows) seen.set(r.event_id, Number(r.created_at_nostr));
  }
  return [...seen].map(([id, createdAt]) => ({ createdAt, id }));
}

/**
 * Refreshes the planner's statistics of the event tables. A bulk load grows them faster than autovacuum analyses
 * them (on a busy machine, not at all for minutes), and a plan made for a small table (a nested loop over every
 * deletion for each row of a batch, in insertBatch's NIP-09 check) then costs more with every batch.
 */
export async function analyzeEventTables(db: Knex): Promise<void> {
  await db.raw('ANALYZE nostr_events');
  await db.raw('ANALYZE nostr_event_tags');
}

/** NIP-45: number of distinct live events matching any of the filters. */
export async function countFilters(db: Knex, filters: Filter[], nowSeconds: number): Promise<number> {
  if (filters.length === 0) return 0;
  const rows = (await countQuery(db, filters, nowSeconds)) as { n: string | number }[];
  return Number(rows[0]?.n ?? 0);
}

function countQuery(db: Knex, filters: Filter[], nowSeconds: number): Knex.QueryBuilder {
  return matchingAny(db, filters, nowSeconds).count({ n: '*' });
}

/**
 * countFilters, and how many of `ids` are among the events counted: fewer than `ids.length` tells a reader of a
 * replica that it may lack an event just stored (or that the filters exclude one; the primary then says which).
 */
export async function countFiltersFinding(
  db: Knex,
  filters: Filter[],
  nowSeconds: number,
  ids: readonly string[],
): Promise<{ count: number; found: number }> {
  if (filters.length === 0) return { count: 0, found: 0 };
  const found =
    ids.length === 0
      ? db.raw('0 as found')
      : db.raw(`count(*) filter (where e.event_id in (${ids.map(() => '?').join(', ')})) as found`, [...ids]);
  const rows = (await matchingAny(db, filters, nowSeconds).select(db.raw('count(*) as n'), found)) as {
    n: string | number;
    found: string | number;
  }[];
  return { count: Number(rows[0]?.n ?? 0), found: Number(rows[0]?.found ?? 0) };
}

/**
 * Why a removed row may be erased: its author deleted it, a newer version replaced it, it expired, its author
 * vanished. A ban's removal is not among them: lifting the ban brings the row back.
 */
const ERASABLE_REASONS = ['deleted', 'replaced', 'expired', 'vanished'] as const;

/**
 * Erases up to `batch` events removed before `removedBefore` (with their tags and per-relay results, by cascade);
 * returns how many. Nothing served changes: a removed row is never served, and what keeps a deleted or older
 * version from coming back is the deletion event or the newer version, which stay.
 */
export async function eraseRemoved(db: Knex, removedBefore: Date, batch = 1000): Promise<number> {
  const ids = db('nostr_events')
    .select('id')
    // `<` holds for no NULL, so PostgreSQL proves the partial index's predicate (removed_at IS NOT NULL) from it
    .where('removed_at', '<', removedBefore)
    .whereIn('removed_reason', ERASABLE_REASONS)
    .limit(batch);
  // the rows, not the driver's count: PGlite's knex dialect answers a DELETE with its rows
  const erased = (await db('nostr_events').whereIn('id', ids).delete().returning('id')) as { id: string }[];
  return erased.length;
}

/** Marks events whose NIP-40 expiration has passed; returns how many. */
export async function removeExpired(db: Knex, nowSeconds: number, batch = 1000): Promise<number> {
  const ids = db('nostr_events')
    .select('id')
    .whereNull('removed_at')
    .where('expires_at', '<=', nowSeconds)
    .limit(batch);
  return db('nostr_events')
    .whereIn('id', ids)
    .update({ removed_at: db.fn.now(), removed_reason: 'expired', updated_at: db.fn.now() });
}
