// Many regular events stored in one transaction (group commit): the bulk counterpart of saveEvent() in
// events.ts for the kinds that need no read-then-write (not replaceable, not addressable, not deletions).
// The rows, their indexed tags and their forwarding outbox rows go in ONE statement, with the accounts of new
// authors: every statement costs a round trip and a parse and plan in Postgres, and under load those, not the
// rows, were the cost of a batch.
import type { Knex } from 'knex';
import type { NostrEvent } from '../nips/nip01.js';
import { preparedColumns } from './array-columns.js';
import { numbered, queryPrepared } from './db.js';
import { EVENT_ID_UNIQUE, indexedTags, type EventRowExtras, type SaveOutcome } from './events.js';
import { EventDeletion, keptOver } from '../nips/kinds.js';
import { canBeDeletedByRequest } from '../nips/nip09.js';
import { CONNECTION_TYPE_SQL, NOT_FORWARDED_SQL, TARGETS_SQL, type Forwarding } from './forwarding-plan.js';
import type { LedgerPeriod, LedgerPeriodType } from './quotas.js';
import { SAVE_USERS_CONFLICT, userFromRow, type UserRecord, type UserStatus } from './users.js';
import type { RelayTarget } from './user-relays.js';

export interface BatchItem {
  readonly ev: NostrEvent;
  readonly extras: EventRowExtras;
  readonly forwarding: Forwarding;
  /**
   * Ledger periods the event is counted in if it is stored, each with its limit (-1: none). A period without room
   * for the batch's posts in it fails the whole statement (retryable-errors.ts isQuotaRefusal).
   */
  readonly charges?: readonly LedgerPeriod[];
  /**
   * The author's account is unsaved (users.ts unsavedUser): this statement saves it with extras.userId, and stores
   * the event only if no account had the key.
   */
  readonly saveAuthor?: boolean;
}

export interface BatchWritten {
  /** Event id → row id of the events stored. */
  readonly rowIds: Map<string, string>;
  /** Ids of the stored events that outbox rows were written for (the forwarder has work). */
  readonly queued: Set<string>;
  /** posts_used after the charges, keyed `${userId}:${type}`. */
  readonly totals: Map<string, number>;
  /**
   * The accounts of the items with saveAuthor, by pubkey: the caller's id if this statement saved it; another id if
   * the account existed (those items' events were not stored); none for a key linked to an account (nor stored).
   */
  readonly authors: Map<string, UserRecord>;
  /** Those accounts' rows for the relays of their events' `newTargets`, by user id. */
  readonly authorRelays: Map<string, RelayTarget[]>;
}

/** Ids among these events that a live kind-5 event by the same author names in an e tag (never a deletion's). */
export async function deletedByAuthors(trx: Knex, all: readonly NostrEvent[]): Promise<Set<string>> {
  const events = all.filter((e) => canBeDeletedByRequest(e.kind));
  if (events.length === 0) return new Set();
  const { rows } = (await trx.raw(
    `SELECT v.id, d.pubkey FROM unnest(CAST(? AS text[])) AS v (id)
     JOIN nostr_event_tags t ON t.name = 'e' AND t.value = nostrx_tag_key(v.id)
     JOIN nostr_events d ON d.id = t.event_row_id
     WHERE d.event_kind = ${EventDeletion} AND d.removed_at IS NULL`,
    [trx.raw('?', [events.map((e) => e.id)])],
  )) as { rows: { id: string; pubkey: string }[] };
  const authorOf = new Map(events.map((e) => [e.id, e.pubkey]));
  return new Set(rows.filter((r) => authorOf.get(r.id) === r.pubkey).map((r) => r.id));
}

// Rows are inserted in event-id order and ledger rows upserted in user order: concurrent batches then take the
// locks in the same order. An event its author deleted (NIP-09) or one already stored is skipped, and neither
// counted nor queued; the caller tells the two apart for the few ids that come back missing. Without charges
// and targets, the last two parts write nothing. The targets (forwarding-plan.ts) are decided before the rows are
// inserted, as each row records their number. A new author's account is saved first (`author`, in pubkey order),
// with the rows for the default relays of their events' `newTargets`: a first post costs no statement, round trip
// or commit of its own. Its events are written only if the account saved is the caller's (`author_of`): an account
// that existed already may be suspended, on another plan, or the key linked to one, which the caller decides after a
// look-up. The ledger's charge is all or nothing: each
// (user, period) row grows by the batch's posts only if they all fit under its limit, and one that does not fails
// the statement (NXQ01, migration 0023), so that no event is stored past a cap; a caller then charges post by post in a
// transaction (store/quotas.ts chargePosts).
const INSERT_BATCH_SQL = `
WITH input AS (
  SELECT * FROM unnest(
    CAST(? AS text[]), CAST(? AS uuid[]), CAST(? AS text[]), CAST(? AS int[]), CAST(? AS bigint[]), CAST(? AS text[]),
    CAST(? AS text[]), CAST(? AS text[]), CAST(? AS text[]), CAST(? AS bigint[]), CAST(? AS text[]), CAST(? AS text[]),
    CAST(? AS text[]), CAST(? AS text[]), CAST(? AS text[]), CAST(? AS boolean[]), CAST(? AS text[]), CAST(? AS boolean[])
  ) AS i (event_id, user_id, pubkey, kind, created_at_nostr, content, tags, sig, d_tag, expires_at, source_platform,
          tweet_id, tweet_url, tweet_text, username, own_first, not_forwarded, save_author)
),
author AS (
  INSERT INTO users (id, nostr_public_key)
  SELECT DISTINCT ON (pubkey) user_id, pubkey FROM input WHERE save_author ORDER BY pubkey
  ${SAVE_USERS_CONFLICT}
),
-- a presumed new author's events are stored only under the account this statement saved with the caller's id: one
-- another process saved first, or none (the key is linked to an account: users_claim_key, migration 0033),
-- leaves them out, and the caller admits them again as an existing author's (core/admission/pipeline.ts)
author_of AS (
  SELECT i.event_id, i.user_id FROM input i LEFT JOIN author a ON a.nostr_public_key = i.pubkey
  WHERE NOT i.save_author OR a.id = i.user_id
),
new_target AS (SELECT * FROM unnest(CAST(? AS text[]), CAST(? AS text[])) AS n (event_id, url)),
author_relay AS (
  INSERT INTO user_relays (user_id, relay_url, is_default, source, read, write)
  SELECT DISTINCT a.user_id, n.url, true, 'default', false, true
  FROM new_target n JOIN author_of a ON a.event_id = n.event_id
  ORDER BY 1, 2
  -- as for the account: a row another process made is returned too (a user's own row for the URL is used as is)
  ON CONFLICT (user_id, relay_url) DO UPDATE SET is_default = user_relays.is_default
  RETURNING id, user_id, relay_url
),
plan AS (SELECT i.event_id, a.user_id, i.own_first FROM input i JOIN author_of a ON a.event_id = i.event_id),
planned AS (
  SELECT * FROM unnest(CAST(? AS text[]), CAST(? AS uuid[]), CAST(? AS text[])) AS d (event_id, relay_id, url)
  UNION ALL
  SELECT n.event_id, r.id, n.url
  FROM new_target n JOIN author_of a ON a.event_id = n.event_id JOIN author_relay r ON r.user_id = a.user_id AND r.relay_url = n.url
),
${TARGETS_SQL},
ev AS (
  INSERT INTO nostr_events (event_id, user_id, pubkey, event_kind, created_at_nostr, content, tags, sig, d_tag, expires_at,
    source_platform, original_tweet_id, original_tweet_url, original_tweet_text, original_username,
    total_relays, status, published_at, publish_duration_ms, failure_reason)
  SELECT i.event_id, a.user_id, i.pubkey, i.kind, i.created_at_nostr, i.content, CAST(i.tags AS json),
    decode(i.sig, 'hex'), i.d_tag, i.expires_at, i.source_platform, i.tweet_id, i.tweet_url, i.tweet_text, i.username,
    COALESCE(n.n, 0),
    CAST(CASE WHEN n.n > 0 THEN 'publishing' ELSE 'published' END AS event_status_enum),
    CASE WHEN n.n > 0 THEN NULL ELSE now() END,
    CASE WHEN n.n > 0 THEN NULL ELSE 0 END,
    CASE WHEN n.n > 0 THEN NULL ELSE ${NOT_FORWARDED_SQL} || i.not_forwarded END
  FROM input i JOIN author_of a ON a.event_id = i.event_id LEFT JOIN target_count n ON n.event_id = i.event_id
  -- deleted by its author (NIP-09): looked up per event, by its id and its author (the LIMIT keeps the planner from
  -- turning it into a join, which a plan cached while the store was small made a scan of every deletion); never a
  -- deletion itself (nips/nip09.ts canBeDeletedByRequest). The naming event is read in a sub-select, which only its
  -- primary key can answer: as a join, the generic plan cached on an empty store read it through the live events'
  -- time index with a filter on the id, a walk over every live event for each tag that names the id
  LEFT JOIN LATERAL (
    SELECT true AS hit FROM nostr_event_tags t
    WHERE i.kind <> ${EventDeletion} AND t.name = 'e' AND t.value = nostrx_tag_key(i.event_id)
      AND (SELECT d.event_kind = ${EventDeletion} AND d.pubkey = i.pubkey AND d.removed_at IS NULL FROM nostr_events d
           WHERE d.id = t.event_row_id)
    LIMIT 1
  ) deletion ON true
  WHERE deletion.hit IS NULL
  ORDER BY i.event_id
  ON CONFLICT ${EVENT_ID_UNIQUE} DO NOTHING
  RETURNING id, event_id, user_id, event_kind, created_at_nostr, total_relays
),
tag AS (
  INSERT INTO nostr_event_tags (event_row_id, name, value, created_at_nostr, event_kind)
  SELECT ev.id, t.name, nostrx_tag_key(t.value), ev.created_at_nostr, ev.event_kind
  FROM unnest(CAST(? AS text[]), CAST(? AS text[]), CAST(? AS text[])) AS t (event_id, name, value)
  JOIN ev ON ev.event_id = t.event_id
),
outbox AS (
  INSERT INTO relay_publishes (event_id, user_relay_id, relay_url, connection_type)
  SELECT ev.id, t.relay_id, t.url, ${CONNECTION_TYPE_SQL('t.url')}
  FROM target t JOIN ev ON ev.event_id = t.event_id
),
counted AS (
  SELECT ev.user_id, c.quota_date, c.quota_type, count(*) AS n, min(c.lim) AS lim, min(c.resets_at) AS resets_at
  -- the enum array goes through text[]: PGlite cannot serialise an array parameter of an enum type
  FROM unnest(CAST(? AS text[]), CAST(? AS date[]), CAST(CAST(? AS text[]) AS quota_type_enum[]), CAST(? AS timestamptz[]),
    CAST(? AS int[])) AS c (event_id, quota_date, quota_type, resets_at, lim)
  JOIN ev ON ev.event_id = c.event_id
  GROUP BY ev.user_id, c.quota_date, c.quota_type
),
charge AS (
  INSERT INTO user_quotas (user_id, quota_date, quota_type, posts_used, posts_limit, resets_at, last_reset_at)
  SELECT user_id, quota_date, quota_type, n, lim, resets_at, now() FROM counted
  WHERE lim < 0 OR n <= lim
  ORDER BY user_id, quota_type
  -- the row's latest version is locked and read here, so no interleaving can push a count past its limit
  ON CONFLICT (user_id, quota_date, quota_type) DO UPDATE
    SET posts_used = user_quotas.posts_used + EXCLUDED.posts_used, posts_limit = EXCLUDED.posts_limit,
        resets_at = EXCLUDED.resets_at, updated_at = now()
    WHERE EXCLUDED.posts_limit < 0 OR user_quotas.posts_used + EXCLUDED.posts_used <= EXCLUDED.posts_limit
  RETURNING user_id, quota_date, quota_type, posts_used
)
SELECT 'event' AS what, CAST(id AS text) AS id, event_id AS key, total_relays AS n, NULL AS status, NULL AS timezone,
  NULL AS owner FROM ev
UNION ALL
SELECT 'count', CAST(user_id AS text), CAST(quota_type AS text), posts_used, NULL, NULL, NULL FROM charge
UNION ALL
SELECT 'author', CAST(id AS text), nostr_public_key, 0, CAST(status AS text), timezone, NULL FROM author
UNION ALL
SELECT 'relay', CAST(id AS text), relay_url, 0, NULL, NULL, CAST(user_id AS text) FROM author_relay
UNION ALL
-- a period without room for the batch's posts: raised, so that nothing of the statement commits (migration 0023)
SELECT 'refused', nostrx_quota_refused(k.user_id, CAST(k.quota_type AS text), k.quota_date), NULL, 0, NULL, NULL, NULL
FROM counted k
WHERE NOT EXISTS (
  SELECT 1 FROM charge g WHERE g.user_id = k.user_id AND g.quota_date = k.quota_date AND g.quota_type = k.quota_type
)`;
const INSERT_BATCH = numbered(INSERT_BATCH_SQL);

type BatchRow =
  | { what: 'event'; id: string; key: string; n: number }
  | { what: 'count'; id: string; key: LedgerPeriodType; n: number }
  | { what: 'author'; id: string; key: string; status: UserStatus; timezone: string }
  | { what: 'relay'; id: string; key: string; owner: string };

/**
 * Stores the events with their tags, outbox rows and ledger counts in one statement (atomic on its own, or part
 * of the caller's transaction), and the accounts of new authors with them (`saveAuthor`). An event missing from
 * `rowIds` was already stored, or deleted by its author (deletedByAuthors). Throws NXQ01 (retryable-errors.ts
 * isQuotaRefusal) when a charge does not fit, having stored nothing.
 */
export async function insertBatch(db: Knex, items: readonly BatchItem[]): Promise<BatchWritten> {
  if (items.length === 0) return emptyWritten();
  const col = preparedColumns(items);
  const tags = items.flatMap((i) => indexedTags(i.ev).map((t) => [i.ev.id, t.name, t.value] as const));
  const planned = items.flatMap((i) => i.forwarding.targets.map((t) => [i.ev.id, t.userRelayId, t.url] as const));
  const newTargets = items.flatMap((i) =>
    (i.saveAuthor ? (i.forwarding.newTargets ?? []) : []).map((url) => [i.ev.id, url] as const),
  );
  const charges = items.flatMap((i) =>
    (i.charges ?? []).map((c) => [i.ev.id, c.date, c.type, c.resetsAt, c.limit] as const),
  );
  // NULL entries of the arrays are sent as SQL NULLs. n: an event's number of targets, a ledger row's posts_used
  const rows = await queryPrepared<BatchRow>(db, 'nostrx_insert_batch', INSERT_BATCH, [
    col((i) => i.ev.id),
    col((i) => i.extras.userId),
    col((i) => i.ev.pubkey),
    col((i) => i.ev.kind),
    col((i) => i.ev.created_at),
    col((i) => i.ev.content),
    col((i) => JSON.stringify(i.ev.tags)),
    col((i) => i.ev.sig),
    col((i) => i.extras.dTag),
    col((i) => i.extras.expiresAt ?? null),
    col((i) => i.extras.sourcePlatform ?? null),
    col((i) => i.extras.tweet?.id ?? null),
    col((i) => i.extras.tweet?.url ?? null),
    col((i) => i.extras.tweet?.text ?? null),
    col((i) => i.extras.tweet?.username ?? null),
    col((i) => i.forwarding.ownRelaysFirst),
    col((i) => i.forwarding.notForwarded),
    col((i) => i.saveAuthor === true),
    newTargets.map((p) => p[0]),
    newTargets.map((p) => p[1]),
    planned.map((p) => p[0]),
    planned.map((p) => p[1]),
    planned.map((p) => p[2]),
    tags.map((t) => t[0]),
    tags.map((t) => t[1]),
    tags.map((t) => t[2]),
    ...[0, 1, 2, 3, 4].map((k) => charges.map((c) => c[k])),
  ]);
  const written = emptyWritten();
  for (const r of rows) {
    if (r.what === 'count') written.totals.set(`${r.id}:${r.key}`, Number(r.n));
    else if (r.what === 'author')
      written.authors.set(
        r.key,
        userFromRow({ id: r.id, nostr_public_key: r.key, status: r.status, timezone: r.timezone }),
      );
    else if (r.what === 'relay') {
      const relays = written.authorRelays.get(r.owner) ?? [];
      relays.push({ userRelayId: r.id, url: r.key });
      written.authorRelays.set(r.owner, relays);
    } else {
      written.rowIds.set(r.key, r.id);
      if (Number(r.n) > 0) written.queued.add(r.key);
    }
  }
  return written;
}

function emptyWritten(): BatchWritten {
  return { rowIds: new Map(), queued: new Set(), totals: new Map(), authors: new Map(), authorRelays: new Map() };
}

/** Takes back rows stored earlier in this same transaction (their quota was refused); their outbox rows go too. */
export async function deleteRows(trx: Knex, rowIds: readonly string[]): Promise<void> {
  if (rowIds.length > 0) await trx('nostr_events').whereIn('id', rowIds).delete();
}

/** A replaceable or addressable event for saveVersions: its replace key (extras.dTag) is never null. */
export interface VersionItem {
  readonly ev: NostrEvent;
  readonly extras: EventRowExtras & { readonly dTag: string };
  readonly forwarding: Forwarding;
}

/**
 * The bulk counterpart of saveEvent() for replaceable and addressable events, one per address (the caller keeps the
 * newest of a batch with kinds.keptOver), in the caller's transaction, in five statements however many: the
 * deletions that name them (NIP-09, by id or by address up to the deletion's created_at), the live versions of
 * their addresses (locked), the versions they replace, then the rows with their tags and outbox rows (insertBatch).
 * The outcome of each is the one saveEvent gives; a concurrent first version of an address surfaces as a unique
 * violation (23505), as there.
 */
export async function saveVersions(
  trx: Knex.Transaction,
  items: readonly VersionItem[],
): Promise<Map<string, SaveOutcome>> {
  const out = new Map<string, SaveOutcome>();
  if (items.length === 0) return out;
  const address = (i: { ev: NostrEvent; extras: { dTag: string } }) => `${i.ev.kind}:${i.ev.pubkey}:${i.extras.dTag}`;
  const { rows: deletions } = (await trx.raw(
    `SELECT v.name, v.value, d.pubkey, d.created_at_nostr FROM unnest(CAST(? AS text[]), CAST(? AS text[])) AS v (name, value)
     JOIN nostr_event_tags t ON t.name = v.name AND t.value = nostrx_tag_key(v.value)
     JOIN nostr_events d ON d.id = t.event_row_id
     WHERE d.event_kind = ${EventDeletion} AND d.removed_at IS NULL`,
    [
      trx.raw('?', [[...items.map(() => 'e'), ...items.map(() => 'a')]]),
      trx.raw('?', [[...items.map((i) => i.ev.id), ...items.map(address)]]),
    ],
  )) as { rows: { name: string; value: string; pubkey: string; created_at_nostr: string | number }[] };
  const deleted = items.filter((i) =>
    deletions.some(
      (d) =>
        d.pubkey === i.ev.pubkey &&
        (d.name === 'e'
          ? d.value === i.ev.id
          : d.value === address(i) && Number(d.created_at_nostr) >= i.ev.created_at),
    ),
  );
  if (deleted.length > 0) {
    const stored = new Set(
      (
        (await trx('nostr_events')
          .whereIn(
            'event_id',
            deleted.map((i) => i.ev.id),
          )
          .select('event_id')) as { event_id: string }[]
      ).map((r) => r.event_id),
    );
    for (const i of deleted) out.set(i.ev.id, { status: stored.has(i.ev.id) ? 'duplicate' : 'deleted' });
  }
  const rest = items.filter((i) => !out.has(i.ev.id));
  if (rest.length === 0) return out;
  const { rows: current } = (await trx.raw(
    `SELECT id, event_id, pubkey, event_kind, d_tag, created_at_nostr FROM nostr_events
     WHERE removed_at IS NULL AND d_tag IS NOT NULL
       AND (pubkey, event_kind, d_tag) IN (SELECT * FROM unnest(CAST(? AS text[]), CAST(? AS int[]), CAST(? AS text[])))
     ORDER BY id FOR UPDATE`,
    [
      trx.raw('?', [rest.map((i) => i.ev.pubkey)]),
      trx.raw('?', [rest.map((i) => i.ev.kind) as unknown as string[]]),
      trx.raw('?', [rest.map((i) => i.extras.dTag)]),
    ],
  )) as {
    rows: {
      id: string;
      event_id: string;
      pubkey: string;
      event_kind: number;
      d_tag: string;
      created_at_nostr: string | number;
    }[];
  };
  const live = new Map(current.map((c) => [`${c.event_kind}:${c.pubkey}:${c.d_tag}`, c]));
  const replaced: string[] = [];
  const toInsert: VersionItem[] = [];
  for (const i of rest) {
    const c = live.get(address(i));
    if (c?.event_id === i.ev.id) out.set(i.ev.id, { status: 'duplicate' });
    else if (c && keptOver({ created_at: Number(c.created_at_nostr), id: c.event_id }, i.ev))
      out.set(i.ev.id, { status: 'superseded' });
    else {
      if (c) replaced.push(c.id);
      toInsert.push(i);
    }
  }
  if (replaced.length > 0) {
    await trx('nostr_events')
      .whereIn('id', replaced)
      .update({ removed_at: trx.fn.now(), removed_reason: 'replaced', updated_at: trx.fn.now() });
  }
  const { rowIds } = await insertBatch(trx, toInsert);
  for (const i of toInsert) {
    const rowId = rowIds.get(i.ev.id);
    out.set(i.ev.id, rowId === undefined ? { status: 'duplicate' } : { status: 'inserted', rowId });
  }
  return out;
}
