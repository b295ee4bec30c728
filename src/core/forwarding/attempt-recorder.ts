// Records forwarding attempts. Outcomes that arrive while a write is in progress are written together, in one
// transaction per batch (group commit): the outbox rows (fenced by the lease), their events' totals and status, the
// user_relays stats and the daily figures, each with one statement. A lost lease writes nothing for that row.
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import {
  addEventOutcomes,
  finishAttempts,
  type AttemptRecord,
  type ClaimedPublish,
  type EventOutcomes,
} from '../../store/outbox.js';
import {
  addDailyRelayStats,
  addRelayStats,
  saveRelayInfo,
  type DailyRelayDelta,
  type RelayStatsDelta,
} from '../../store/relay-stats.js';
import { isUnavailable } from '../../store/outage.js';
import { isTransactionConflict } from '../../store/retryable-errors.js';
import type { Decision } from './policy.js';
import type { PublishReport, UpstreamPool } from './upstream-pool.js';

export interface Outcome {
  readonly row: ClaimedPublish;
  readonly decision: Decision;
  /** null when nothing was sent (expired row, removed event). */
  readonly report: PublishReport | null;
  readonly startedAt: Date;
  /** Set when this outcome opened the relay's circuit breaker. */
  readonly pausedUntil: Date | null;
}

export interface AttemptRecorder {
  /** Resolves once the outcome is committed (or dropped because the lease was lost). */
  record(outcome: Outcome): Promise<void>;
}

interface Queued {
  readonly outcome: Outcome;
  readonly rec: AttemptRecord;
  resolve(): void;
  reject(err: unknown): void;
}

const MAX_BATCH = 500;

const dayFormats = new Map<string, Intl.DateTimeFormat>();
/** The calendar day (YYYY-MM-DD) in `timezone` (UTC when the zone is unknown). */
export function dayIn(timezone: string, at = new Date()): string {
  let f = dayFormats.get(timezone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
    } catch {
      f = new Intl.DateTimeFormat('en-CA', { timeZone: 'UTC', year: 'numeric', month: '2-digit', day: '2-digit' });
    }
    dayFormats.set(timezone, f);
  }
  return f.format(at);
}

/** The row update and attempt_log entry for one outcome. */
export function attemptRecord(o: Outcome, workerId: string): AttemptRecord {
  const { row, decision: d, report } = o;
  const response = report?.result.kind === 'answered' ? report.result.response : null;
  const finishedAt = new Date();
  const totalTimeMs = report?.totalMs ?? Math.max(0, finishedAt.getTime() - o.startedAt.getTime());
  return {
    status: d.status,
    retryInMs: d.retryInMs,
    connectionTimeMs: report?.connectionMs ?? null,
    publishTimeMs: report?.publishMs ?? null,
    totalTimeMs,
    relayResponse: response,
    errorCode: d.errorCode,
    errorMessage: d.errorMessage,
    ipAddress: report?.remoteAddress ?? null,
    logEntry: {
      attempt: row.attempt,
      worker: workerId,
      started_at: o.startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      outcome: d.outcome,
      status: d.status,
      transitions: report?.transitions ?? [],
      reused_connection: report?.reused ?? false,
      connection_time_ms: report?.connectionMs ?? null,
      publish_time_ms: report?.publishMs ?? null,
      total_time_ms: totalTimeMs,
      relay_response: response,
      error_code: d.errorCode,
      error_message: d.errorMessage,
      ...(d.retryInMs !== undefined
        ? { retry_in_ms: d.retryInMs, next_attempt_at: new Date(finishedAt.getTime() + d.retryInMs).toISOString() }
        : {}),
    },
  };
}

const attempted = (o: Outcome) => o.report !== null && o.report.result.kind !== 'shutdown';

/** Per event: the targets that became final in this batch. */
function eventOutcomes(done: readonly Queued[]): EventOutcomes[] {
  const byEvent = new Map<string, { ok: number; failed: number; failure: string | null }>();
  for (const { outcome: o } of done) {
    if (o.decision.status === 'pending') continue;
    const e = byEvent.get(o.row.eventRowId) ?? { ok: 0, failed: 0, failure: null };
    if (o.decision.status === 'published') e.ok += 1;
    else {
      e.failed += 1;
      e.failure = `${o.row.url}: ${o.decision.errorMessage ?? o.decision.errorCode ?? o.decision.status}`.slice(
        0,
        1000,
      );
    }
    byEvent.set(o.row.eventRowId, e);
  }
  return [...byEvent].map(([eventRowId, e]) => ({ eventRowId, ...e }));
}

/** Per user relay, the batch's attempts added up in order (the breaker count restarts at each answer). */
function relayDeltas(done: readonly Queued[]): RelayStatsDelta[] {
  const byRelay = new Map<string, { -readonly [K in keyof RelayStatsDelta]: RelayStatsDelta[K] }>();
  for (const { outcome: o, rec } of done) {
    const id = o.row.userRelayId;
    const final = o.decision.status !== 'pending';
    if (!id || !(attempted(o) || (final && o.decision.outcome === 'expired'))) continue;
    const d = byRelay.get(id) ?? {
      userRelayId: id,
      connected: false,
      finals: 0,
      successes: 0,
      finalFailures: 0,
      successMsTotal: 0,
      failures: 0,
      answered: false,
      trailingHealthFailures: 0,
      pausedUntil: null,
    };
    const success = o.decision.status === 'published';
    if (o.report?.connectionMs !== null && o.report?.connectionMs !== undefined) d.connected = true;
    if (final) d.finals += 1;
    if (success) {
      d.successes += 1;
      d.successMsTotal += rec.publishTimeMs ?? 0;
    } else {
      d.failures += 1;
      if (final) d.finalFailures += 1;
    }
    if (o.decision.health === 'ok') {
      d.answered = true;
      d.trailingHealthFailures = 0;
    } else if (o.decision.health === 'fail') d.trailingHealthFailures += 1;
    if (o.pausedUntil && (!d.pausedUntil || o.pausedUntil > d.pausedUntil)) d.pausedUntil = o.pausedUntil;
    byRelay.set(id, d);
  }
  return [...byRelay.values()];
}

/** Per user and day (in the user's timezone), the attempts that reached a relay. */
function dailyDeltas(done: readonly Queued[]): DailyRelayDelta[] {
  const byDay = new Map<string, { -readonly [K in keyof DailyRelayDelta]: DailyRelayDelta[K] }>();
  for (const { outcome: o, rec } of done) {
    if (!attempted(o)) continue;
    const day = dayIn(o.row.timezone);
    const key = `${o.row.userId}/${day}`;
    const d = byDay.get(key) ?? {
      userId: o.row.userId,
      statDate: day,
      attempts: 0,
      successes: 0,
      successMsTotal: 0,
      minMs: null,
      maxMs: null,
    };
    d.attempts += 1;
    if (o.decision.status === 'published' && rec.publishTimeMs !== null) {
      d.successes += 1;
      d.successMsTotal += rec.publishTimeMs;
      d.minMs = d.minMs === null ? rec.publishTimeMs : Math.min(d.minMs, rec.publishTimeMs);
      d.maxMs = d.maxMs === null ? rec.publishTimeMs : Math.max(d.maxMs, rec.publishTimeMs);
    }
    byDay.set(key, d);
  }
  return [...byDay.values()];
}

export interface AttemptRecorderDeps {
  readonly db: Knex;
  readonly workerId: string;
  readonly log: Logger;
  readonly pool: Pick<UpstreamPool, 'info'>;
  /** How long an outcome is retried while the database is unavailable (the lease: past it the row is claimed again). */
  readonly outageRetryMs?: number;
}

export function createAttemptRecorder(deps: AttemptRecorderDeps): AttemptRecorder {
  const { db, workerId, log } = deps;
  const queue: Queued[] = [];
  let flushing: Promise<void> | null = null;
  let flushQueued = false;

  async function write(batch: readonly Queued[]): Promise<Queued[]> {
    return db.transaction(async (trx) => {
      const written = await finishAttempts(
        trx,
        workerId,
        batch.map((q) => ({
          key: { id: q.outcome.row.id, createdAt: q.outcome.row.createdAt, attempt: q.outcome.row.attempt },
          rec: q.rec,
        })),
      );
      const done = batch.filter((q) => written.has(q.outcome.row.id));
      await addEventOutcomes(trx, eventOutcomes(done));
      await addRelayStats(trx, relayDeltas(done));
      await addDailyRelayStats(trx, dailyDeltas(done));
      return done;
    });
  }

  async function writeWithRetry(batch: readonly Queued[]): Promise<void> {
    const giveUpAt = Date.now() + (deps.outageRetryMs ?? 0);
    let pauseMs = 100;
    for (let tries = 1; ; tries++) {
      try {
        const done = await write(batch);
        if (done.length < batch.length) {
          const lost = batch
            .filter((q) => !done.includes(q))
            .map((q) => ({ row: q.outcome.row.id, attempt: q.outcome.row.attempt }));
          log.warn({ lost }, 'lease lost before the outcome was recorded; those outcomes are dropped');
        }
        break;
      } catch (err) {
        if (tries < 3 && isTransactionConflict(err)) continue;
        // The database is away (restarting, failing over): the outcome is kept and written once it is back, while
        // the lease still fences the row. Given up, the row would be claimed again and the event sent twice.
        if (isUnavailable(err) && Date.now() + pauseMs < giveUpAt) {
          await new Promise((r) => setTimeout(r, pauseMs));
          pauseMs = Math.min(2 * pauseMs, 2000);
          continue;
        }
        throw err;
      }
    }
    // Rows of users whose relay row has no NIP-11 document yet (created after the relay's document was fetched).
    const urls = new Set(
      batch.filter((q) => q.outcome.row.needsRelayInfo && q.outcome.row.userRelayId).map((q) => q.outcome.row.url),
    );
    for (const url of urls) {
      const info = deps.pool.info(url);
      if (info) await saveRelayInfo(db, url, info.info, info.supportedNips);
    }
  }

  function scheduleFlush(): void {
    if (flushing || flushQueued) return;
    flushQueued = true;
    setImmediate(() => {
      flushQueued = false;
      flush();
    });
  }

  function flush(): void {
    if (flushing) return;
    const p = (async () => {
      while (queue.length > 0) {
        const batch = queue.splice(0, MAX_BATCH);
        try {
          await writeWithRetry(batch);
          for (const q of batch) q.resolve();
        } catch (err) {
          for (const q of batch) q.reject(err);
        }
      }
    })().finally(() => {
      if (flushing === p) flushing = null;
      if (queue.length > 0) scheduleFlush();
    });
    flushing = p;
  }

  return {
    record(outcome) {
      const rec = attemptRecord(outcome, workerId);
      return new Promise<void>((resolve, reject) => {
        queue.push({ outcome, rec, resolve, reject });
        scheduleFlush();
      });
    },
  };
}
