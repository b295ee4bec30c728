// The periods Lightning payments buy, as plain rules over dates (no I/O). A Lightning period does not renew: each paid
// invoice buys one period of its plan and cycle. A period paid while none runs starts at once; one paid while another
// runs (or is waiting) starts when that one ends. Periods of the same plan that follow each other form one run, shown
// as one subscription whose end moves out with each payment; a period of another plan starts a run of its own.
import type { BillingCycle } from './facts.js';

const DAY_MS = 86_400_000;

/** The length of a period: a month is 30 days and a year 365 (the periods NIP-11's fees name). */
export const cycleMs: Readonly<Record<Exclude<BillingCycle, 'lifetime'>, number>> = {
  monthly: 30 * DAY_MS,
  yearly: 365 * DAY_MS,
};

export interface PaidPeriod {
  readonly paymentHash: string;
  /** The run it belongs to: the payment hash of the run's first invoice. */
  readonly subscriptionKey: string;
  readonly planCode: string;
  readonly billingCycle: Exclude<BillingCycle, 'lifetime'>;
  readonly amountSats: number;
  readonly start: Date;
  readonly end: Date;
}

/** Periods of one plan that follow each other: one subscription. Its cycle and price are those of its last period. */
interface Run {
  readonly key: string;
  readonly planCode: string;
  readonly billingCycle: Exclude<BillingCycle, 'lifetime'>;
  readonly amountSats: number;
  readonly start: Date;
  readonly end: Date;
}

export interface Placement {
  readonly start: Date;
  readonly end: Date;
  readonly subscriptionKey: string;
}

/**
 * Where the period an invoice paid at `now` goes, given the user's paid periods that still count: after the last of
 * them (in its run when the plan is the same), else from now.
 */
export function placePeriod(
  now: Date,
  live: readonly PaidPeriod[],
  paid: { paymentHash: string; planCode: string; billingCycle: Exclude<BillingCycle, 'lifetime'> },
): Placement {
  const tail = live
    .filter((p) => p.end > now)
    .reduce<PaidPeriod | undefined>((last, p) => (!last || p.end > last.end ? p : last), undefined);
  const start = tail ? tail.end : now;
  return {
    start,
    end: new Date(start.getTime() + cycleMs[paid.billingCycle]),
    subscriptionKey: tail && tail.planCode === paid.planCode ? tail.subscriptionKey : paid.paymentHash,
  };
}

function runsOf(periods: readonly PaidPeriod[]): Map<string, Run> {
  const runs = new Map<string, Run>();
  for (const p of [...periods].sort((a, b) => a.start.getTime() - b.start.getTime())) {
    const run = runs.get(p.subscriptionKey);
    runs.set(p.subscriptionKey, {
      key: p.subscriptionKey,
      planCode: p.planCode,
      billingCycle: p.billingCycle,
      amountSats: p.amountSats,
      start: run && run.start < p.start ? run.start : p.start,
      end: run && run.end > p.end ? run.end : p.end,
    });
  }
  return runs;
}

export interface LightningState {
  /** The run that covers `now`: the user's Lightning subscription now. */
  readonly current?: Run | undefined;
  /** The subscription recorded as active that is over (or was never paid for): it ends at `at`. */
  readonly ended?: { readonly key: string; readonly at: Date } | undefined;
}

/** What the paid periods say at `now`, given the key of the Lightning subscription recorded as active (if any). */
export function stateAt(now: Date, periods: readonly PaidPeriod[], activeKey: string | undefined): LightningState {
  const runs = runsOf(periods);
  const current = [...runs.values()].find((r) => r.start <= now && now < r.end);
  if (!activeKey || activeKey === current?.key) return { current };
  const over = runs.get(activeKey)?.end;
  return { current, ended: { key: activeKey, at: over && over <= now ? over : now } };
}

/** The longest wait between two lookups of a pending invoice. */
const MAX_LOOKUP_WAIT_MS = 30_000;
/** Lookups after the expiry, counted from it: a payment the wallet settles late is still found without a notification. */
const LATE_LOOKUPS_MS = [60_000, 10 * 60_000, 60 * 60_000];

/**
 * When to look up a pending invoice again after `checks` lookups: the wait starts at `pollMs` and doubles, at most
 * 30 s, with one lookup just after the expiry.
 */
export function nextLookup(checks: number, expiresAt: Date, now: number, pollMs: number): Date {
  const wait = Math.min(pollMs * 2 ** Math.min(checks, 20), MAX_LOOKUP_WAIT_MS);
  const afterExpiry = expiresAt.getTime() + 1000;
  return new Date(now < afterExpiry ? Math.min(now + wait, afterExpiry) : now + wait);
}

/** The next of the late lookups of an expired invoice (1, 10 and 60 minutes after its expiry); null when none is left. */
export function lateLookup(expiresAt: Date, now: number): Date | null {
  const at = LATE_LOOKUPS_MS.map((ms) => expiresAt.getTime() + ms).find((t) => t > now);
  return at === undefined ? null : new Date(at);
}
