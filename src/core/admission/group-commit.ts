// Group commit for regular events: while one batch is being written, newly verified events wait; when it
// commits, all of them are written together. Each event's answer is sent only after what holds it has committed.
// Under light load a batch is one event, so nothing waits; under heavy load many events share one commit. A batch
// is ONE statement (rows, tags, outbox rows, accounts of new authors, ledger charges) and no transaction: its
// charge is all or nothing, and when a capped period has no room for the batch's posts in it (the counters let
// few such posts through) the statement stores nothing and the batch is written again as a transaction, where
// each post is charged on its own and a refused one taken back. A batch rolled back for a conflict with another
// transaction (deadlock, serialization failure) is written again, a few times (admission/conflict-retry.ts),
// before any of its events is answered.
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import type { VerifiedEvent } from '../../nips/nip01.js';
import type { Rejection } from '../../nips/result.js';
import { deleteRows, deletedByAuthors, insertBatch } from '../../store/event-batch.js';
import { isQuotaRefusal } from '../../store/retryable-errors.js';
import { NO_UPSTREAM } from '../../store/forwarding-plan.js';
import type { EventRowExtras, SaveOutcome } from '../../store/events.js';
import type { LedgerPeriod } from '../../store/quotas.js';
import type { RelayTarget } from '../../store/user-relays.js';
import type { UserRecord } from '../../store/users.js';
import type { AdmissionStages, QuotaFacts } from './contract.js';
import { retryingConflicts } from './conflict-retry.js';

export interface WriteJob {
  readonly user: UserRecord;
  readonly ev: VerifiedEvent;
  readonly extras: EventRowExtras;
}

/**
 * How storing went; a stored event says whether outbox rows were written with it (the forwarder has work). For an
 * unsaved author (a first post), `author` is their account as it was saved with the event.
 */
export type Saved = (
  | Exclude<SaveOutcome, { status: 'inserted' }>
  | { readonly status: 'inserted'; readonly rowId: string; readonly queued: boolean }
  /** Nothing stored: the author presumed new has an account (another process's, or the key is linked to one). */
  | { readonly status: 'author-exists' }
) & {
  readonly author?: UserRecord;
};

type WriteResult =
  Saved | { readonly status: 'refused'; readonly refusal: { rejection: Rejection; quota: QuotaFacts } };

export interface WriterDeps {
  readonly db: Knex;
  readonly log: Logger;
  readonly stages: AdmissionStages;
  /** Stores one event in a transaction of its own: used when a whole batch fails, to isolate the cause. */
  readonly single: (job: WriteJob) => Promise<WriteResult>;
  readonly maxBatch?: number;
  /**
   * Transactions written at once (default 2). Each batch locks its rows in a fixed order (events by id, quota
   * rows by user), so concurrent batches wait on each other but do not deadlock; if one ever did (with them or with
   * another transaction), the batch is written again, and after the last try its events one by one.
   */
  readonly concurrency?: number;
  /** Told the size and duration of every committed batch (metrics). */
  readonly onBatch?: (size: number, seconds: number) => void;
}

export interface Writer {
  submit(job: WriteJob): Promise<WriteResult>;
  /** Resolves when everything submitted so far is written. */
  idle(): Promise<void>;
}

interface Pending {
  readonly job: WriteJob;
  resolve(r: WriteResult): void;
  reject(e: unknown): void;
}

export function createWriter(deps: WriterDeps): Writer {
  const maxBatch = deps.maxBatch ?? 500;
  let queue: Pending[] = [];
  const concurrency = deps.concurrency ?? 2;
  const running = new Set<Promise<void>>();

  interface Written {
    /** The jobs with their authors' accounts as stored (a new author's now saved). */
    readonly jobs: readonly WriteJob[];
    readonly results: WriteResult[];
    /** Indexes of the jobs whose rows were stored. */
    readonly stored: number[];
    readonly rowIds: Map<string, string>;
    readonly totals: Map<string, number>;
    /** The relay rows made for new authors (store/event-batch.ts authorRelays). */
    readonly authorRelays: Map<string, RelayTarget[]>;
  }

  /**
   * Stores the rows of a batch with their tags and outbox rows (and the given charges, all or nothing), and new
   * authors' accounts with them; answers the rest.
   */
  async function writeRows(
    db: Knex,
    submitted: readonly WriteJob[],
    charges?: readonly (readonly LedgerPeriod[])[],
  ): Promise<Written> {
    const results = new Array<WriteResult>(submitted.length);
    // the same event twice in one batch: the later copies are duplicates of the first
    const first = new Map<string, number>();
    submitted.forEach((j, i) => {
      if (first.has(j.ev.id)) results[i] = { status: 'duplicate' };
      else first.set(j.ev.id, i);
    });
    const unique = [...first.values()];
    const plans =
      (await deps.stages.planForwarding?.(
        db,
        unique.map((i) => submitted[i]!),
      )) ?? [];
    const { rowIds, queued, totals, authors, authorRelays } = await insertBatch(
      db,
      unique.map((i, k) => ({
        ...submitted[i]!,
        forwarding: plans[k] ?? NO_UPSTREAM,
        charges: charges?.[i] ?? [],
        saveAuthor: submitted[i]!.user.unsaved === true,
      })),
    );
    // a new author's account was saved by that statement: what follows (the ledger, the answers) uses it; a
    // presumed new author whose account existed had nothing stored
    const taken = (j: WriteJob) => j.user.unsaved === true && authors.get(j.ev.pubkey)?.id !== j.user.id;
    const authorOf = (j: WriteJob) => (j.user.unsaved && !taken(j) ? authors.get(j.ev.pubkey) : undefined);
    const jobs = submitted.map((j) => {
      const a = authorOf(j);
      return a ? { ...j, user: a, extras: { ...j.extras, userId: a.id } } : j;
    });
    const author = (i: number) => {
      const a = authorOf(submitted[i]!);
      return a ? { author: a } : {};
    };
    for (const i of unique) if (taken(submitted[i]!)) results[i] = { status: 'author-exists' };
    // not stored: already there, or deleted by its author (rare, so asked only then)
    const missing = unique.filter((i) => !rowIds.has(jobs[i]!.ev.id) && results[i] === undefined);
    const deleted = await deletedByAuthors(
      db,
      missing.map((i) => jobs[i]!.ev),
    );
    for (const i of missing)
      results[i] = { status: deleted.has(jobs[i]!.ev.id) ? 'deleted' : 'duplicate', ...author(i) };
    const stored = unique.filter((i) => rowIds.has(jobs[i]!.ev.id));
    for (const i of stored)
      results[i] = {
        status: 'inserted',
        rowId: rowIds.get(jobs[i]!.ev.id)!,
        queued: queued.has(jobs[i]!.ev.id),
        ...author(i),
      };
    return { jobs, results, stored, rowIds, totals, authorRelays };
  }

  /** The whole batch in one statement, atomic on its own, its charges with it. */
  async function writeAtOnce(
    jobs: readonly WriteJob[],
    charges: readonly (readonly LedgerPeriod[])[],
  ): Promise<Written> {
    const w = await writeRows(deps.db, jobs, charges);
    deps.stages.chargedInBatch?.(
      w.stored.map((i) => w.jobs[i]!),
      w.totals,
    );
    return w;
  }

  /** A capped period had no room for all the batch's posts: the ledger decides each, and a refused row goes. */
  async function writeInTransaction(trx: Knex.Transaction, jobs: readonly WriteJob[]): Promise<Written> {
    const w = await writeRows(trx, jobs);
    if (w.stored.length === 0) return w;
    const refusals =
      (await deps.stages.chargeQuotaBatch?.(
        trx,
        w.stored.map((i) => w.jobs[i]!),
      )) ?? [];
    const takenBack: string[] = [];
    w.stored.forEach((i, k) => {
      const refusal = refusals[k];
      if (!refusal) return;
      w.results[i] = { status: 'refused', refusal };
      takenBack.push(w.rowIds.get(w.jobs[i]!.ev.id)!);
    });
    await deleteRows(trx, takenBack);
    return w;
  }

  /** One try at the whole batch; once committed, the outbox stage learns the relay rows it made for new authors. */
  async function writeBatch(jobs: readonly WriteJob[]): Promise<WriteResult[]> {
    const w = await writeCommitted(jobs);
    deps.stages.committedTargets?.(w.authorRelays);
    return w.results;
  }

  /** The one statement, or, when it refused a charge, the transaction; resolves once what it wrote is committed. */
  async function writeCommitted(jobs: readonly WriteJob[]): Promise<Written> {
    const charges = await deps.stages.batchCharges?.(jobs);
    if (charges) {
      try {
        return await writeAtOnce(jobs, charges);
      } catch (err) {
        if (!isQuotaRefusal(err)) throw err;
      }
    }
    return deps.db.transaction((trx) => writeInTransaction(trx, jobs));
  }

  async function flush(batch: Pending[]): Promise<void> {
    const jobs = batch.map((p) => p.job);
    const started = process.hrtime.bigint();
    try {
      const results = await retryingConflicts(deps.log, 'group commit', () => writeBatch(jobs));
      deps.onBatch?.(batch.length, Number(process.hrtime.bigint() - started) / 1e9);
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // One bad event must not fail the others: write each in its own transaction.
      deps.log.warn({ err, batch: batch.length }, 'a batch write failed; writing its events one by one');
      for (const p of batch)
        await deps.single(p.job).then(
          (r) => p.resolve(r),
          (e: unknown) => p.reject(e),
        );
    }
  }

  function pump(): void {
    while (running.size < concurrency && queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(batch.length);
      const p: Promise<void> = flush(batch).finally(() => {
        running.delete(p);
        pump();
      });
      running.add(p);
    }
  }

  return {
    submit(job) {
      return new Promise<WriteResult>((resolve, reject) => {
        queue.push({ job, resolve, reject });
        pump();
      });
    },
    async idle() {
      while (running.size > 0 || queue.length > 0) await Promise.allSettled([...running]);
    },
  };
}
