// Quota periods in the user's own time zone: the local day (reset at local midnight) and the local month. Pure
// functions over Intl (no Temporal); the boundaries are found exactly, so days of 23 or 25 hours and days that
// start at 01:00 (a DST jump over midnight) reset at their real first instant.

export type PeriodType = 'daily' | 'monthly';

export interface QuotaPeriod {
  readonly type: PeriodType;
  /** The ledger key (user_quotas.quota_date): the local date, or the first day of the local month. */
  readonly date: string;
  /** First instant of the period, ms since the epoch. */
  readonly startsAt: number;
  /** First instant of the next period, ms since the epoch. */
  readonly resetsAt: number;
}

export interface Periods {
  readonly daily: QuotaPeriod;
  readonly monthly: QuotaPeriod;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
/** What each zone name seen resolved to: itself, or UTC when Intl does not know it. */
const resolved = new Map<string, string>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The zone itself when Intl knows it, else UTC (users.timezone is free text). */
export function safeTimeZone(timeZone: string): string {
  let zone = resolved.get(timeZone);
  if (zone === undefined) {
    try {
      formatterFor(timeZone);
      zone = timeZone;
    } catch {
      zone = 'UTC';
    }
    if (resolved.size > 10_000) resolved.clear();
    resolved.set(timeZone, zone);
  }
  return zone;
}

interface LocalDate {
  readonly y: number;
  readonly m: number;
  readonly d: number;
}

function localDate(ms: number, timeZone: string): LocalDate {
  const parts = formatterFor(timeZone).formatToParts(ms);
  let y = 0;
  let m = 0;
  let d = 0;
  for (const p of parts) {
    if (p.type === 'year') y = Number(p.value);
    else if (p.type === 'month') m = Number(p.value);
    else if (p.type === 'day') d = Number(p.value);
  }
  return { y, m, d };
}

const ordinal = (x: LocalDate): number => x.y * 10_000 + x.m * 100 + x.d;

/** Normalises day/month overflow (d = 32, m = 13 …) through UTC calendar arithmetic. */
function civil(y: number, m: number, d: number): LocalDate {
  const t = new Date(Date.UTC(y, m - 1, d));
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
}

/**
 * The first instant (whole second, in ms) whose local date in `timeZone` is `day` or later. Offsets lie within
 * ±15 h of UTC, so the answer is inside [UTC midnight − 15 h, UTC midnight + 15 h]; a binary search over the
 * seconds of that window finds it exactly.
 */
function startOfLocalDay(day: LocalDate, timeZone: string): number {
  const zone = safeTimeZone(timeZone);
  const target = ordinal(day);
  const utcMidnight = Date.UTC(day.y, day.m - 1, day.d) / 1000;
  let lo = utcMidnight - 15 * 3600; // local date before `day`
  let hi = utcMidnight + 15 * 3600; // local date `day` or later
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ordinal(localDate(mid * 1000, zone)) >= target) hi = mid;
    else lo = mid;
  }
  return hi * 1000;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
const iso = (x: LocalDate): string => `${pad(x.y, 4)}-${pad(x.m)}-${pad(x.d)}`;

/** The daily and monthly periods that contain `nowMs` for a user in `timeZone`. */
export function periodsAt(nowMs: number, timeZone: string): Periods {
  const zone = safeTimeZone(timeZone);
  const today = localDate(nowMs, zone);
  const tomorrow = civil(today.y, today.m, today.d + 1);
  const firstOfMonth = { y: today.y, m: today.m, d: 1 };
  const firstOfNext = civil(today.y, today.m + 1, 1);
  return {
    daily: {
      type: 'daily',
      date: iso(today),
      startsAt: startOfLocalDay(today, zone),
      resetsAt: startOfLocalDay(tomorrow, zone),
    },
    monthly: {
      type: 'monthly',
      date: iso(firstOfMonth),
      startsAt: startOfLocalDay(firstOfMonth, zone),
      resetsAt: startOfLocalDay(firstOfNext, zone),
    },
  };
}

/**
 * periodsAt with a small cache per zone: the answer only changes at a local midnight, so admission computes it
 * once per zone and day instead of per event.
 */
export function createPeriodClock(): (nowMs: number, timeZone: string) => Periods {
  const cache = new Map<string, Periods>();
  return (nowMs, timeZone) => {
    const hit = cache.get(timeZone);
    if (hit && nowMs >= hit.daily.startsAt && nowMs < hit.daily.resetsAt) return hit;
    const fresh = periodsAt(nowMs, timeZone);
    if (cache.size > 1000) cache.clear(); // free-text zones: keep the cache bounded
    cache.set(timeZone, fresh);
    return fresh;
  };
}

let lastIsoMs = Number.NaN;
let lastIso = '';

/**
 * `2026-11-26T00:00:00Z`: the instant as UTC ISO 8601 without milliseconds. The last answer is kept: a flood of
 * refused posts asks for the same reset instant at every refusal (3 % of the main thread's time in a profile).
 */
export function isoSeconds(ms: number): string {
  if (ms !== lastIsoMs) {
    lastIso = new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    lastIsoMs = ms;
  }
  return lastIso;
}
