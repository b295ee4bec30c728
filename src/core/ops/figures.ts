// Figures: a user's own daily stats (plans with analytics only) and the admin reports. Ranges are whole days (a
// user's stats in their time zone, the reports in UTC), at most a year; without one, the last 30 days (stats,
// revenue) or 7 days (engagement, relays), as the founding document's queries had them. They read from the replica
// when there is one (a day's figures may lag by its lag).
import { fail, ok, type Result } from '../../nips/result.js';
import {
  engagementByPlan,
  relayPerformance,
  revenueByDayAndPlan,
  userDailyStats,
  type DailyStat,
  type DateRange,
  type EngagementRow,
  type RelayPerformanceRow,
  type RevenueRow,
} from '../../store/reports.js';
import type { Reads } from '../../store/read-replica.js';

export type { DailyStat, DateRange };

const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;
const utcDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Today's date in UTC (YYYY-MM-DD): the reports' days. */
export const utcToday = (nowSeconds: number): string => utcDate(nowSeconds * 1000);

/**
 * The range asked for, with defaults: `to` = `today` (UTC for the reports, the user's own for their stats), `from`
 * = `to` minus `defaultDays - 1`. A rejection names the field: from after to, or a range longer than MAX_RANGE_DAYS.
 */
export function dateRange(
  q: { from?: string | undefined; to?: string | undefined },
  today: string,
  defaultDays: number,
): Result<DateRange> & { field?: string } {
  const to = q.to ?? today;
  const from = q.from ?? utcDate(Date.parse(`${to}T00:00:00Z`) - (defaultDays - 1) * DAY_MS);
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
  if (days < 1) return { ...fail('invalid', `from (${from}) is after to (${to})`), field: 'from' };
  if (days > MAX_RANGE_DAYS)
    return { ...fail('invalid', `the range is ${days} days, the limit is ${MAX_RANGE_DAYS}`), field: 'from' };
  return ok({ from, to });
}

export interface Reports {
  userStats(userId: string, range: DateRange): Promise<DailyStat[]>;
  revenue(range: DateRange): Promise<RevenueRow[]>;
  engagement(range: DateRange): Promise<EngagementRow[]>;
  relays(range: DateRange): Promise<RelayPerformanceRow[]>;
}

export function createReports(reads: Reads): Reports {
  return {
    userStats: (userId, range) => reads.read((db) => userDailyStats(db, userId, range)),
    revenue: (range) => reads.read((db) => revenueByDayAndPlan(db, range)),
    engagement: (range) => reads.read((db) => engagementByPlan(db, range)),
    relays: (range) => reads.read((db) => relayPerformance(db, range)),
  };
}
