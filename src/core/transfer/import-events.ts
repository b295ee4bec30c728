// Bulk import of signed events (JSONL, one event per line), by the relay's own rules: the same checks before the
// signature (shape, limits, NIP-40 expiry, bans), every signature verified on the verifier threads, and the same
// store functions: regular events many to one statement (store/event-batch.ts insertBatch, as the group commit
// writes them); replaceable and addressable events a few statements per transaction (saveVersions, the bulk
// counterpart of store/events.ts saveEvent, deciding by the same kinds.keptOver); deletions as regular events, then
// what they name removed, in one transaction (deleteReferenced). No quota is charged; nothing is queued for
// forwarding unless a forwarding stage is given (--forward). Lines are taken in batches committed in file order,
// so "every line up to N is committed" is always known: the caller keeps that as a checkpoint and a later run
// resumes after it.
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../../log.js';
import * as kinds from '../../nips/kinds.js';
import * as nip01 from '../../nips/nip01.js';
import * as nip40 from '../../nips/nip40.js';
import type { Rejection, Result } from '../../nips/result.js';
import { deletedByAuthors, insertBatch, saveVersions, type BatchWritten } from '../../store/event-batch.js';
import {
  analyzeEventTables,
  deleteReferenced,
  saveEvent,
  type EventRowExtras,
  type SaveOutcome,
} from '../../store/events.js';
import { enqueuePlanned, IMPORTED, NOT_FORWARDED_IMPORT, type Forwarding } from '../../store/forwarding-plan.js';
import { upsertUsersByPubkeys, type UserRecord } from '../../store/users.js';
import { RELAY_LIST_KIND, type OutboxStage } from '../forwarding/index.js';
import type { Verify } from '../admission/index.js';
import { DELETED, deletedAbove, latestVersions, precheck, type Item } from './import-rules.js';

export interface ImportCounts {
  /** Lines up to the last committed one, blank ones included (and those an earlier run committed). */
  lines: number;
  imported: number;
  /** Already stored, or the same event earlier in the file. */
  duplicate: number;
  /** A newer version of this replaceable or addressable event is stored (NIP-01). */
  superseded: number;
  /** Refused, each with its reason in the report: bad JSON or shape, limits, signature, expired, banned, deleted. */
  rejected: number;
}

export const noCounts = (): ImportCounts => ({ lines: 0, imported: 0, duplicate: 0, superseded: 0, rejected: 0 });

/** A refused line: its number (from 1), the NIP-01 reason the relay would have answered, the event id if known. */
export interface BadLine {
  readonly line: number;
  readonly reason: string;
  readonly id?: string;
}

export interface ImportDeps {
  readonly db: Knex;
  readonly log: Logger;
  /** The verifier threads (core/verifier-pool.ts). */
  readonly verify: Verify;
  /** The relay's event limits; an archive is old by nature, so the caller usually lifts the past window. */
  readonly limits: nip01.EventLimits;
  /** NIP-86 bans (core/bans.ts check). */
  readonly checkBans?: (ev: nip01.NostrEvent) => Rejection | undefined;
  /** Where events go, as on the relay (core/outbox.ts); absent: nothing is queued and each row says why. */
  readonly forwarding?: OutboxStage;
  readonly now?: () => number;
}

export interface ImportOptions {
  /** Lines up to this one were committed by an earlier run: they are read past, not imported again. */
  readonly resumeAfter?: number;
  /** That run's counts, continued. */
  readonly counts?: ImportCounts;
  /** Lines per batch (default 2000). */
  readonly batchSize?: number;
  /** Transactions at once for the events stored one by one (default 8: each waits mostly on round trips). */
  readonly concurrency?: number;
  /** Stops reading; what was read is committed, and the summary says `interrupted`. */
  readonly signal?: AbortSignal;
  /** Each refused line, in line order, once its batch is committed. */
  readonly onRejected?: (bad: BadLine) => void;
  /** After each batch commit: every line up to `line` is done (a checkpoint). */
  readonly onCommitted?: (line: number, counts: Readonly<ImportCounts>) => Promise<void> | void;
}

export interface ImportSummary {
  readonly counts: ImportCounts;
  readonly interrupted: boolean;
}

interface Pending {
  readonly line: number;
  readonly ev: nip01.NostrEvent;
  readonly verdict: Promise<Result<nip01.VerifiedEvent>>;
}

interface Batch {
  lastLine: number;
  lines: number;
  readonly events: Pending[];
  readonly bad: BadLine[];
}

type Tally = Omit<ImportCounts, 'lines'>;

const UNIQUE_VIOLATION = '23505';
/** Most events stored one by one in one transaction (its row locks are held until it commits). */
const MAX_LANE = 250;
/** Statements that store a batch's regular events side by side (the database works on each with one core). */
const REGULAR_STATEMENTS = 2;
/** Events imported before the planner's statistics are first refreshed (then each time they have doubled). */
const ANALYZE_FIRST_AFTER = 5000;

function idOf(raw: unknown): string | undefined {
  const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length <= 64 ? id : undefined;
}

/** Runs `work` over `items`, at most `n` at once. */
async function eachLimited<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
}

export async function importEvents(
  lines: AsyncIterable<string>,
  deps: ImportDeps,
  opts: ImportOptions = {},
): Promise<ImportSummary> {
  const { db } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const batchSize = opts.batchSize ?? 2000;
  const concurrency = opts.concurrency ?? 8;
  const resumeAfter = opts.resumeAfter ?? 0;
  const counts: ImportCounts = { ...noCounts(), ...opts.counts };
  const users = new LRUCache<string, UserRecord>({ max: 200_000 });

  const extrasOf = (item: Item): EventRowExtras => ({
    userId: item.user.id,
    dTag: kinds.replaceKey(item.ev),
    expiresAt: nip40.expiration(item.ev),
    sourcePlatform: IMPORTED,
  });

  async function usersOf(pubkeys: readonly string[]): Promise<Map<string, UserRecord>> {
    const out = new Map<string, UserRecord>();
    const missing: string[] = [];
    for (const pk of new Set(pubkeys)) {
      const known = users.get(pk);
      if (known) out.set(pk, known);
      else missing.push(pk);
    }
    for (const [pk, user] of await upsertUsersByPubkeys(db, missing)) {
      users.set(pk, user);
      out.set(pk, user);
    }
    return out;
  }

  /** Events that need no read before their write, in one statement, as the group commit writes them. */
  function insertItems(
    conn: Knex,
    items: readonly Item[],
    plans: ReadonlyMap<Item, Forwarding>,
  ): Promise<BatchWritten> {
    return insertBatch(
      conn,
      items.map((item) => ({
        ev: item.ev,
        extras: extrasOf(item),
        forwarding: plans.get(item) ?? NOT_FORWARDED_IMPORT,
        charges: [],
      })),
    );
  }

  /**
   * Regular events, or the batch's deletions, in one statement whatever their number, counted once committed (one
   * left out is stored already, or deleted by its author). Deletions also remove what they name, in the same
   * transaction: a deletion is never removed nor refused by another, so storing them together gives what storing
   * them in turn would. A deletions' transaction that fails (a deadlock with the relay's own deletions) is written
   * again an event per transaction, as the relay does.
   */
  async function storeTogether(
    items: readonly Item[],
    plans: ReadonlyMap<Item, Forwarding>,
    tally: Tally,
    bad: BadLine[],
  ): Promise<void> {
    if (items.length === 0) return;
    const deletions = items.filter((i) => i.ev.kind === kinds.EventDeletion);
    let rowIds: ReadonlyMap<string, string>;
    try {
      rowIds =
        deletions.length === 0
          ? (await insertItems(db, items, plans)).rowIds
          : await db.transaction(async (trx) => {
              const written = await insertItems(trx, items, plans);
              await deleteReferenced(
                trx,
                deletions.filter((i) => written.rowIds.has(i.ev.id)).map((i) => i.ev),
              );
              return written.rowIds;
            });
    } catch (err) {
      if (deletions.length === 0) throw err;
      deps.log.warn({ err, events: items.length }, 'an import transaction failed; storing its events one by one');
      await storeEach(items, tally, bad);
      return;
    }
    const missing = items.filter((i) => !rowIds.has(i.ev.id));
    const deleted = await deletedByAuthors(
      db,
      missing.map((i) => i.ev),
    );
    tally.imported += items.length - missing.length;
    for (const i of missing) {
      if (!deleted.has(i.ev.id)) tally.duplicate++;
      else bad.push({ line: i.line, reason: DELETED.message, id: i.ev.id });
    }
  }

  /** One replaceable or addressable event, or a deletion, in the caller's transaction, as admission stores it. */
  async function storeIn(trx: Knex.Transaction, item: Item): Promise<SaveOutcome> {
    const saved = await saveEvent(trx, item.ev, extrasOf(item));
    if (saved.status !== 'inserted') return saved;
    if (item.ev.kind === kinds.EventDeletion) await deleteReferenced(trx, [item.ev]);
    if (deps.forwarding) await deps.forwarding.enqueueForwarding(trx, item.user, item.ev, saved.rowId);
    else
      await enqueuePlanned(
        trx,
        { rowId: saved.rowId, eventId: item.ev.id, userId: item.user.id },
        NOT_FORWARDED_IMPORT,
      );
    return saved;
  }

  /** One event in a transaction of its own; a first version of its address stored meanwhile (the relay): run again. */
  async function storeOne(item: Item): Promise<SaveOutcome> {
    try {
      return await db.transaction((trx) => storeIn(trx, item));
    } catch (err) {
      if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
      return db.transaction((trx) => storeIn(trx, item));
    }
  }

  /** Counts what storing one event came to. */
  function count(item: Item, saved: SaveOutcome, tally: Tally, bad: BadLine[]): void {
    if (saved.status === 'inserted') tally.imported++;
    else if (saved.status === 'deleted') bad.push({ line: item.line, reason: DELETED.message, id: item.ev.id });
    else tally[saved.status]++;
  }

  /**
   * Runs `write` over the items in a few transactions side by side (a commit per event would cost a WAL flush per
   * event). A lane that fails (a deadlock between two deletions of one event, a race with the relay) is written
   * again an event per transaction, so one event cannot fail the others.
   */
  async function inLanes(
    items: readonly Item[],
    tally: Tally,
    bad: BadLine[],
    write: (trx: Knex.Transaction, lane: readonly Item[]) => Promise<SaveOutcome[]>,
  ): Promise<void> {
    const laneSize = Math.min(MAX_LANE, Math.max(1, Math.ceil(items.length / concurrency)));
    const lanes: Item[][] = [];
    for (let i = 0; i < items.length; i += laneSize) lanes.push(items.slice(i, i + laneSize));
    await eachLimited(lanes, concurrency, async (lane) => {
      let outcomes: SaveOutcome[];
      try {
        outcomes = await db.transaction((trx) => write(trx, lane));
      } catch (err) {
        deps.log.warn({ err, events: lane.length }, 'an import transaction failed; storing its events one by one');
        outcomes = [];
        for (const item of lane) outcomes.push(await storeOne(item));
      }
      lane.forEach((item, k) => count(item, outcomes[k]!, tally, bad));
    });
  }

  /** Relay lists with --forward (and deletions a batch could not store together): admission's one-event path. */
  async function storeEach(items: readonly Item[], tally: Tally, bad: BadLine[]): Promise<void> {
    await inLanes(items, tally, bad, async (trx, lane) => {
      const out: SaveOutcome[] = [];
      for (const item of lane) out.push(await storeIn(trx, item));
      return out;
    });
  }

  /** Replaceable and addressable events, one per address: a few statements per lane (store/event-batch.ts saveVersions). */
  async function storeVersions(
    items: readonly Item[],
    plans: ReadonlyMap<Item, Forwarding>,
    tally: Tally,
    bad: BadLine[],
  ): Promise<void> {
    await inLanes(items, tally, bad, async (trx, lane) => {
      const saved = await saveVersions(
        trx,
        lane.map((item) => ({
          ev: item.ev,
          extras: { ...extrasOf(item), dTag: kinds.replaceKey(item.ev) ?? '' },
          forwarding: plans.get(item) ?? NOT_FORWARDED_IMPORT,
        })),
      );
      return lane.map((item) => saved.get(item.ev.id) ?? { status: 'duplicate' });
    });
  }

  let importedSinceAnalyze = 0;
  let importedAtAnalyze = 0;
  /** Statistics refreshed whenever the events imported have doubled since the last time (from 5000 on). */
  async function keepStatisticsFresh(imported: number): Promise<void> {
    importedSinceAnalyze += imported;
    if (importedSinceAnalyze < Math.max(ANALYZE_FIRST_AFTER, importedAtAnalyze)) return;
    importedAtAnalyze += importedSinceAnalyze;
    importedSinceAnalyze = 0;
    await analyzeEventTables(db);
  }

  /** The batch's events whose signature holds, each once (a later copy in the batch is a duplicate). */
  async function signedOf(batch: Batch, tally: Tally): Promise<{ line: number; ev: nip01.VerifiedEvent }[]> {
    const verdicts = await Promise.all(batch.events.map((p) => p.verdict));
    const signed: { line: number; ev: nip01.VerifiedEvent }[] = [];
    const seen = new Set<string>();
    batch.events.forEach((p, i) => {
      const v = verdicts[i]!;
      if (!v.ok) batch.bad.push({ line: p.line, reason: v.rejection.message, id: p.ev.id });
      else if (seen.has(v.value.id)) tally.duplicate++;
      else {
        seen.add(v.value.id);
        signed.push({ line: p.line, ev: v.value });
      }
    });
    return signed;
  }

  /** With their authors (created when new); an event of a suspended or deleted account is refused, as admission does. */
  async function withAuthors(
    signed: readonly { line: number; ev: nip01.VerifiedEvent }[],
    bad: BadLine[],
  ): Promise<Item[]> {
    const authors = await usersOf(signed.map((s) => s.ev.pubkey));
    const items: Item[] = [];
    for (const s of signed) {
      const user = authors.get(s.ev.pubkey)!;
      if (user.status === 'suspended' || user.status === 'deleted')
        bad.push({ line: s.line, reason: `blocked: this account is ${user.status}`, id: s.ev.id });
      else items.push({ ...s, user });
    }
    const deleted = deletedAbove(items);
    for (const i of deleted) bad.push({ line: i.line, reason: DELETED.message, id: i.ev.id });
    return items.filter((i) => !deleted.has(i));
  }

  /**
   * Regular events and the newest version of each address side by side, then the deletions, so that one naming an
   * event a few lines above finds it stored. Returns how long each part took (for the debug log).
   */
  async function store(items: readonly Item[], tally: Tally, bad: BadLine[]): Promise<Record<string, number>> {
    const started = Date.now();
    const isDeletion = (i: Item) => i.ev.kind === kinds.EventDeletion;
    const regular = items.filter((i) => kinds.kindClass(i.ev.kind) === 'regular' && !isDeletion(i));
    const latest = latestVersions(
      items.filter((i) => kinds.kindClass(i.ev.kind) !== 'regular'),
      () => tally.superseded++,
    );
    // a relay list queued for forwarding changes the user's relays first (core/outbox.ts): admission's own path
    const appliesRelayList = (i: Item) => deps.forwarding !== undefined && i.ev.kind === RELAY_LIST_KIND;
    // Where each goes, decided before any transaction opens: that also caches the authors' plans, which the
    // transactions then read from memory (on PGlite a transaction holds the only connection; a look-up would wait).
    const planned = deps.forwarding ? await deps.forwarding.planForwarding(db, items) : [];
    const plans = new Map(planned.map((p, k) => [items[k]!, p]));
    const half = Math.ceil(regular.length / REGULAR_STATEMENTS);
    const parts = Array.from({ length: REGULAR_STATEMENTS }, (_, k) => regular.slice(k * half, (k + 1) * half));
    const took = { regularMs: 0, versionsMs: 0, deletionsMs: 0 };
    await Promise.all([
      Promise.all(parts.map((part) => storeTogether(part, plans, tally, bad))).then(
        () => (took.regularMs = Date.now() - started),
      ),
      storeVersions(
        latest.filter((i) => !appliesRelayList(i)),
        plans,
        tally,
        bad,
      )
        .then(() => storeEach(latest.filter(appliesRelayList), tally, bad))
        .then(() => (took.versionsMs = Date.now() - started)),
    ]);
    const deletionsAt = Date.now();
    await storeTogether(items.filter(isDeletion), plans, tally, bad);
    took.deletionsMs = Date.now() - deletionsAt;
    return took;
  }

  async function write(batch: Batch): Promise<void> {
    const tally: Tally = { imported: 0, duplicate: 0, superseded: 0, rejected: 0 };
    const bad = batch.bad;
    const started = Date.now();
    const signed = await signedOf(batch, tally);
    const verifiedAt = Date.now();
    const items = await withAuthors(signed, bad);
    const took = await store(items, tally, bad);
    deps.log.debug(
      { line: batch.lastLine, events: items.length, waitedForSignaturesMs: verifiedAt - started, ...took },
      'import batch written',
    );

    await keepStatisticsFresh(tally.imported);
    bad.sort((a, b) => a.line - b.line);
    for (const b of bad) opts.onRejected?.(b);
    counts.imported += tally.imported;
    counts.duplicate += tally.duplicate;
    counts.superseded += tally.superseded;
    counts.rejected += bad.length;
    counts.lines = batch.lastLine;
    await opts.onCommitted?.(batch.lastLine, counts);
  }

  function take(batch: Batch, line: number, text: string): void {
    batch.lastLine = line;
    batch.lines++;
    const trimmed = text.trim();
    if (trimmed === '') return;
    let raw: unknown;
    try {
      raw = JSON.parse(trimmed);
    } catch {
      batch.bad.push({ line, reason: 'invalid: the line is not valid JSON' });
      return;
    }
    const parsed = nip01.parseEvent(raw);
    const id = idOf(raw);
    if (!parsed.ok) {
      batch.bad.push({ line, reason: parsed.rejection.message, ...(id ? { id } : {}) });
      return;
    }
    const refused = precheck(parsed.value, deps.limits, deps.checkBans, now());
    if (refused) batch.bad.push({ line, reason: refused.message, id: parsed.value.id });
    else batch.events.push({ line, ev: parsed.value, verdict: deps.verify(parsed.value) });
  }

  const newBatch = (): Batch => ({ lastLine: 0, lines: 0, events: [], bad: [] });
  let batch = newBatch();
  // One batch is written while the next is read and verified; a failed write stops the import.
  let writing: Promise<void> = Promise.resolve();
  let lineNo = 0;
  let interrupted = false;
  for await (const text of lines) {
    if (opts.signal?.aborted) {
      interrupted = true;
      break;
    }
    lineNo++;
    if (lineNo <= resumeAfter) continue;
    take(batch, lineNo, text);
    if (batch.lines < batchSize) continue;
    await writing;
    // stopped while this batch was read: it is not written, and a resumed run reads it again
    if (opts.signal?.aborted) {
      interrupted = true;
      break;
    }
    writing = write(batch);
    writing.catch(() => undefined); // awaited before the next batch or at the end
    batch = newBatch();
  }
  await writing;
  if (!interrupted && batch.lines > 0) await write(batch);
  return { counts, interrupted };
}
