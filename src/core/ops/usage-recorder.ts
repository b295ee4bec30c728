// Usage recording off the admission path: admission reports what happened (a post charged, a post refused for
// quota, a post that failed to store) and returns at once; this buffer writes usage_events and
// daily_usage_stats in batches, one multi-row INSERT and one multi-row upsert per flush (every `flushMs` and on
// close; the events alone sooner, when `batchRows` are waiting). Quota refusals are aggregated per user and period
// between flushes, so a flood of refused posts costs one row per flush, not one per attempt.
import type { Knex } from 'knex';
import { quietly } from '../../lib/quiet.js';
import type { Logger } from '../../log.js';
import { addDailyStats, insertUsageEvents, type DailyStatsDelta, type UsageEventRow } from '../../store/usage.js';

export interface UsageRecorderDeps {
  readonly db: Knex;
  readonly log: Logger;
  readonly flushMs?: number;
  readonly batchRows?: number;
  /** Rows kept while the database refuses them; past this the oldest are dropped (and logged). */
  readonly maxBuffered?: number;
}

interface ExceededAttempt {
  readonly userId: string;
  readonly plan: string;
  readonly period: 'daily' | 'monthly';
  readonly periodDate: string;
  readonly limit: number;
  readonly used: number;
  readonly resetsAt: string;
  readonly at: Date;
  readonly via: string;
  readonly ip?: string | undefined;
  readonly timezone?: string | undefined;
}

export interface UsageRecorder {
  event(row: UsageEventRow): void;
  exceeded(a: ExceededAttempt): void;
  /** One post's outcome in the user's local day (daily_usage_stats). */
  post(userId: string, date: string, outcome: 'success' | 'failure', platform?: string): void;
  /** Events and stat rows waiting to be written. */
  pending(): number;
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface ExceededTotal {
  first: ExceededAttempt;
  last: ExceededAttempt;
  attempts: number;
}

/**
 * The database refused the rows themselves (SQLSTATE class 22 data exception or 23 integrity violation, e.g. the
 * user was deleted meanwhile): trying again cannot succeed, and keeping them would block every later row.
 */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

function platformColumn(platform: string | undefined): 'twitterPosts' | 'xComPosts' | undefined {
  const p = platform?.toLowerCase();
  if (p === 'twitter' || p === 'twitter.com') return 'twitterPosts';
  if (p === 'x' || p === 'x.com') return 'xComPosts';
  return undefined;
}

export function createUsageRecorder(deps: UsageRecorderDeps): UsageRecorder {
  const flushMs = deps.flushMs ?? 1000;
  const batchRows = deps.batchRows ?? 500;
  const maxBuffered = deps.maxBuffered ?? 100_000;
  let events: UsageEventRow[] = [];
  let exceeded = new Map<string, ExceededTotal>();
  let stats = new Map<string, DailyStatsDelta>();
  let running: Promise<void> | undefined;
  let again = false;
  // The refusals' rows and the day's totals (daily_usage_stats) are written by the timer, flush() and close(), not
  // each time the buffer holds `batchRows` events: at saturation that was every ~250 posts, and each time an update
  // of the totals row of nearly every user who posted (~0.9 updated row per stored post instead of ~0.2).
  let totalsDue = false;
  let closed = false;
  let dropped = 0;

  // While the database is away every flush fails the same way: logged once per half minute, with the repeats counted.
  let lastError: unknown;
  const eventsFailed = quietly((_m, repeats) =>
    deps.log.error(
      { err: lastError, rows: events.length, repeats },
      'writing usage_events failed; the rows are kept for the next flush',
    ),
  );
  const statsFailed = quietly((_m, repeats) =>
    deps.log.error(
      { err: lastError, rows: stats.size, repeats },
      'updating daily_usage_stats failed; the counts are kept for the next flush',
    ),
  );

  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();

  const pending = (): number => events.length + exceeded.size + stats.size;
  const soon = (): void => {
    if (events.length >= batchRows) void write();
  };

  function exceededRows(totals: Map<string, ExceededTotal>): UsageEventRow[] {
    return [...totals.values()].map(({ first, last, attempts }) => ({
      userId: last.userId,
      type: 'quota_exceeded',
      action: `${last.period}_limit`,
      occurredAt: last.at,
      postsUsedBefore: last.used,
      postsUsedAfter: last.used,
      quotaLimit: last.limit,
      ip: last.ip,
      timezone: last.timezone,
      data: {
        plan: last.plan,
        period: last.period,
        period_date: last.periodDate,
        resets_at: last.resetsAt,
        attempts,
        first_at: first.at.toISOString(),
        via: last.via,
      },
    }));
  }

  async function writeOnce(): Promise<void> {
    const withTotals = totalsDue;
    totalsDue = false;
    const batch = withTotals ? [...events, ...exceededRows(exceeded)] : events;
    const deltas = withTotals ? [...stats.values()] : [];
    events = [];
    if (withTotals) {
      exceeded = new Map();
      stats = new Map();
    }
    if (batch.length === 0 && deltas.length === 0) return;
    try {
      const unplaced = await insertUsageEvents(deps.db, batch);
      if (unplaced.length > 0) {
        const months = [...new Set(unplaced.map((r) => r.occurredAt.toISOString().slice(0, 7)))];
        deps.log.error(
          { rows: unplaced.length, months },
          'usage_events rows in months without a partition dropped (maintenance creates the months ahead)',
        );
      }
    } catch (err) {
      if (isDataError(err)) {
        deps.log.error({ err, rows: batch.length }, 'usage_events rows refused by the database; dropped');
      } else {
        lastError = err;
        eventsFailed(err instanceof Error ? err.message : String(err));
        events = [...batch, ...events];
      }
    }
    try {
      await addDailyStats(deps.db, deltas);
    } catch (err) {
      if (isDataError(err)) {
        deps.log.error({ err, rows: deltas.length }, 'daily_usage_stats rows refused by the database; dropped');
      } else {
        lastError = err;
        statsFailed(err instanceof Error ? err.message : String(err));
        for (const d of deltas) mergeStats(d);
      }
    }
    if (events.length > maxBuffered) {
      const drop = events.length - maxBuffered;
      events = events.slice(drop);
      dropped += drop;
      deps.log.warn({ dropped: drop, droppedTotal: dropped }, 'usage buffer full: oldest usage_events rows dropped');
    }
  }

  function mergeStats(d: DailyStatsDelta): void {
    const key = `${d.userId}|${d.date}`;
    const s = stats.get(key);
    if (!s) {
      stats.set(key, { ...d });
      return;
    }
    s.totalPosts += d.totalPosts;
    s.successfulPosts += d.successfulPosts;
    s.failedPosts += d.failedPosts;
    s.twitterPosts += d.twitterPosts;
    s.xComPosts += d.xComPosts;
  }

  function flush(): Promise<void> {
    totalsDue = true;
    return write();
  }

  function write(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await writeOnce();
      } while (again && pending() > 0);
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    event(row) {
      if (closed) return;
      events.push(row);
      soon();
    },
    exceeded(a) {
      if (closed) return;
      const key = `${a.userId}|${a.period}|${a.periodDate}`;
      const t = exceeded.get(key);
      if (t) {
        t.last = a;
        t.attempts++;
      } else exceeded.set(key, { first: a, last: a, attempts: 1 });
    },
    post(userId, date, outcome, platform) {
      if (closed) return;
      const col = platformColumn(platform);
      mergeStats({
        userId,
        date,
        totalPosts: 1,
        successfulPosts: outcome === 'success' ? 1 : 0,
        failedPosts: outcome === 'failure' ? 1 : 0,
        twitterPosts: col === 'twitterPosts' ? 1 : 0,
        xComPosts: col === 'xComPosts' ? 1 : 0,
      });
    },
    pending,
    flush,
    async close() {
      clearInterval(timer);
      await flush();
      closed = true;
      if (pending() > 0) await flush(); // what arrived during the last flush
    },
  };
}
