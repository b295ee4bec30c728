// Group commit for regular events: while one batch is being written, newly verified events wait; when it
// commits, all of them go in the next transaction, with one multi-row statement per step. Each event's answer
// is sent only after the transaction that holds it has committed. Under light load a batch is one event, so
// nothing waits; under heavy load many events share one commit and a handful of round trips.
import type { Knex } from 'knex';
import type { Logger } from '../log.js';
import type { VerifiedEvent } from '../nips/nip01.js';
import type { Rejection } from '../nips/result.js';
import { deleteRows, deletedByAuthors, insertEvents, insertTagsFor } from '../store/event-batch.js';
import type { EventRowExtras, SaveOutcome } from '../store/events.js';
import type { UserRecord } from '../store/users.js';
import type { AdmissionStages, QuotaFacts } from './admission.js';

export interface WriteJob {
  readonly user: UserRecord;
  readonly ev: VerifiedEvent;
  readonly extras: EventRowExtras;
}

export type WriteResult = SaveOutcome | { readonly status: 'refused'; readonly refusal: { rejection: Rejection; quota: QuotaFacts } };

export interface WriterDeps {
  readonly db: Knex;
  readonly log: Logger;
  readonly stages: AdmissionStages;
  /** Stores one event in a transaction of its own: used when a whole batch fails, to isolate the cause. */
  readonly single: (job: WriteJob) => Promise<WriteResult>;
  readonly maxBatch?: number;
  /**
   * Transactions written at once (default 2). Each batch locks its rows in a fixed order (events by id, quota
   * rows by user), so concurrent batches wait on each other but do not deadlock; if one ever did, its events
   * would be written again one by one.
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

  async function writeBatch(trx: Knex.Transaction, jobs: readonly WriteJob[]): Promise<WriteResult[]> {
    const results: WriteResult[] = new Array(jobs.length);
    // the same event twice in one batch: the later copies are duplicates of the first
    const first = new Map<string, number>();
    jobs.forEach((j, i) => {
      if (first.has(j.ev.id)) results[i] = { status: 'duplicate' };
      else first.set(j.ev.id, i);
    });
    const unique = [...first.values()];
    const deleted = await deletedByAuthors(trx, unique.map((i) => jobs[i]!.ev));
    for (const i of unique) if (deleted.has(jobs[i]!.ev.id)) results[i] = { status: 'deleted' };
    const candidates = unique.filter((i) => results[i] === undefined);
    const rowIds = await insertEvents(trx, candidates.map((i) => jobs[i]!));
    const stored = candidates.filter((i) => {
      if (rowIds.has(jobs[i]!.ev.id)) return true;
      results[i] = { status: 'duplicate' };
      return false;
    });

    const refusals = stored.length > 0 ? ((await deps.stages.chargeQuotaBatch?.(trx, stored.map((i) => jobs[i]!))) ?? []) : [];
    const kept: number[] = [];
    const takenBack: string[] = [];
    stored.forEach((i, k) => {
      const refusal = refusals[k];
      if (refusal) {
        results[i] = { status: 'refused', refusal };
        takenBack.push(rowIds.get(jobs[i]!.ev.id)!);
      } else {
        results[i] = { status: 'inserted', rowId: rowIds.get(jobs[i]!.ev.id)! };
        kept.push(i);
      }
    });
    await deleteRows(trx, takenBack);
    const keptRows = kept.map((i) => ({ ...jobs[i]!, rowId: rowIds.get(jobs[i]!.ev.id)! }));
    await insertTagsFor(trx, keptRows);
    if (deps.stages.enqueueForwardingBatch) await deps.stages.enqueueForwardingBatch(trx, keptRows);
    else for (const r of keptRows) await deps.stages.enqueueForwarding?.(trx, r.user, r.ev, r.rowId);
    return results;
  }

  async function flush(batch: Pending[]): Promise<void> {
    const jobs = batch.map((p) => p.job);
    const started = process.hrtime.bigint();
    try {
      const results = await deps.db.transaction((trx) => writeBatch(trx, jobs));
      deps.onBatch?.(batch.length, Number(process.hrtime.bigint() - started) / 1e9);
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // One bad event must not fail the others: write each in its own transaction.
      deps.log.warn({ err, batch: batch.length }, 'a batch write failed; writing its events one by one');
      for (const p of batch) await deps.single(p.job).then(p.resolve, p.reject);
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
