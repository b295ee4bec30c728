// Tier quotas: the admission stages that count posts against the author's plan. Three layers, each cheaper and
// less authoritative than the next:
//   1. precheckQuota (before the signature check): an in-process mark "this user is at the limit of this plan
//      until <reset>", set only from facts Postgres committed. A flooding user costs no I/O and no verification.
//   2. reserveQuota (after the signature check): one Lua call on the shared counters (Redis, or memory without
//      it) that refuses when committed posts plus posts in flight reach the cap, else holds one post. Not for a
//      new author's only post in flight: nothing of theirs is committed or held, so it fits under any cap of one
//      or more, and the call would only add a round trip to their first post; nor for a post whose author has no
//      counter yet for the period (their first post of the day) and no other post in flight here: making one from
//      the ledger would add two. The count such a post commits is recorded in the counters after it.
//   3. the ledger (user_quotas), charged by the statement that stores the event (batchCharges: all the batch's
//      posts of a period fit under the plan's current limit, or the statement stores nothing), or, when it did not
//      fit, post by post in a transaction (chargeQuotaBatch). This one decides; the layers above only refuse early.
// onSettled gives the hold back (failed, duplicate, superseded) or confirms it with the count Postgres returned,
// and hands the outcome to the usage recorder. Only kinds in POST_KINDS are ever counted.
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import type { NostrEvent } from '../../nips/nip01.js';
import { rejection, type Rejection } from '../../nips/result.js';
import type { PlanRecord } from '../../store/plans.js';
import {
  chargePosts,
  chargeUnlimited,
  readUsage,
  type LedgerPeriod,
  type PostChargeResult,
  type UnlimitedCharge,
} from '../../store/quotas.js';
import type { CounterPeriod, QuotaCounters, ReserveResult } from '../../store/quota-counters.js';
import type { UserRecord } from '../../store/users.js';
import type { AdmissionContext, AdmissionStages, QuotaFacts } from '../admission/index.js';
import type { Plans } from './plans.js';
import { createPostGate } from './post-gate.js';
import { createPeriodClock, isoSeconds, type PeriodType, type QuotaPeriod } from './periods.js';
import type { UsageRecorder } from '../ops/index.js';

export interface QuotaDeps {
  readonly db: Knex;
  readonly log: Logger;
  readonly plans: Plans;
  readonly postKinds: readonly number[];
  readonly counters: QuotaCounters;
  readonly usage?: UsageRecorder | undefined;
  /** Seconds since the epoch; injectable for tests. */
  readonly now?: (() => number) | undefined;
  /** How long a counter call may take before admission goes on without it (the ledger still decides). */
  readonly countersTimeoutMs?: number;
  readonly onRejected?: (plan: string, period: PeriodType) => void;
}

interface PeriodUsage {
  readonly used: number;
  /** -1 = unlimited */
  readonly limit: number;
  /** -1 = unlimited */
  readonly remaining: number;
  readonly resets_at: string;
}

/** GET /v1/me/quota */
export interface QuotaStatus {
  readonly plan: string;
  readonly daily: PeriodUsage;
  readonly monthly: PeriodUsage | null;
}

type Refusal = { rejection: Rejection; quota: QuotaFacts };
type Stages = Required<
  Pick<
    AdmissionStages,
    | 'precheckQuota'
    | 'reserveQuota'
    | 'chargeQuota'
    | 'chargeQuotaBatch'
    | 'batchCharges'
    | 'chargedInBatch'
    | 'onSettled'
  >
>;

export interface Quota {
  readonly stages: Stages;
  status(user: UserRecord): Promise<QuotaStatus>;
  /** Drops what this process remembers about the user's quota (their plan changed). */
  forget(userId: string): void;
  isPost(kind: number): boolean;
}

interface Limited {
  readonly type: PeriodType;
  readonly period: QuotaPeriod;
  /** -1 = unlimited */
  readonly limit: number;
}

/** What one event's admission learned along the way, from reserveQuota to onSettled. */
interface Ticket {
  readonly plan: PlanRecord;
  readonly limits: readonly Limited[];
  /** The user id the hold was taken under: a new author's account may be saved under another (a race). */
  holder?: string;
  token?: string;
  held?: readonly Limited[];
  /** A post let through without a hold (a new author's, or the first of a period): these periods are recorded after. */
  unheld?: readonly Limited[];
  /** Counts after this event's charge (valid only if the transaction committed). */
  charged?: Partial<Record<PeriodType, number>>;
  /** The ledger refused: the period and its committed count. */
  refused?: { type: PeriodType; used: number };
}

/** "This user is at the limit of this plan until resetsAt": set only from counts Postgres committed. */
interface Mark {
  readonly plan: string;
  readonly type: PeriodType;
  readonly limit: number;
  readonly used: number;
  readonly resetsAt: number;
}

const MAX_MARKS = 200_000;

/** The smallest limit of the plan (daily or monthly), or undefined when both are unlimited. */
function smallestCap(plan: PlanRecord): number | undefined {
  const caps = [plan.dailyPostLimit, plan.monthlyPostLimit].filter((l): l is number => l !== null && l >= 0);
  return caps.length > 0 ? Math.min(...caps) : undefined;
}

function limitOf(plan: PlanRecord, type: PeriodType): number | null {
  return type === 'daily' ? plan.dailyPostLimit : plan.monthlyPostLimit;
}

function posts(n: number): string {
  return `${n} post${n === 1 ? '' : 's'}`;
}

function facts(plan: PlanRecord, type: PeriodType, limit: number, used: number, resetsAt: number): QuotaFacts {
  return { plan: plan.code, period: type, limit, used, resetsAt: isoSeconds(resetsAt) };
}

/** `rate-limited: daily limit of 3 posts reached on the basic plan; resets at 2026-11-26T00:00:00Z` */
function limitReached(plan: PlanRecord, type: PeriodType, limit: number, used: number, resetsAt: number): Refusal {
  return {
    rejection: rejection(
      'rate-limited',
      `${type} limit of ${posts(limit)} reached on the ${plan.code} plan; resets at ${isoSeconds(resetsAt)}`,
    ),
    quota: facts(plan, type, limit, used, resetsAt),
  };
}

/**
 * The rest of the quota is held by posts still being stored (they may yet fail, and then free their place): the
 * same answer, saying so, and not remembered as final.
 */
function limitInFlight(plan: PlanRecord, l: Limited, used: number, held: number): Refusal {
  return {
    rejection: rejection(
      'rate-limited',
      `${l.type} limit of ${posts(l.limit)} reached on the ${plan.code} plan (counting posts still being stored); resets at ${isoSeconds(l.period.resetsAt)}`,
    ),
    quota: facts(plan, l.type, l.limit, used + held, l.period.resetsAt),
  };
}

export function createQuota(deps: QuotaDeps): Quota {
  const { log, plans, counters } = deps;
  const nowMs = deps.now ? () => deps.now!() * 1000 : () => Date.now();
  const postKinds = new Set(deps.postKinds);
  const isPost = (kind: number): boolean => postKinds.has(kind);
  const clock = createPeriodClock();
  const timeoutMs = deps.countersTimeoutMs ?? 250;
  const marks = new Map<string, Mark>();
  const gate = createPostGate();
  const tickets = new WeakMap<NostrEvent, Ticket>();
  // Authors with a post in flight that took no hold (reserveQuota): their next posts take holds.
  const unheldAuthors = new Set<string>();
  const instance = randomBytes(6).toString('hex');
  let seq = 0;
  let lastCounterError = 0;

  function counterFailed(err: unknown): void {
    // Logged at most every 10 s: when Redis is down every post would say so.
    if (Date.now() - lastCounterError < 10_000) return;
    lastCounterError = Date.now();
    log.warn({ err }, 'quota counters unavailable; the Postgres ledger alone decides meanwhile');
  }

  function limitsFor(user: UserRecord, plan: PlanRecord, at: number): Limited[] {
    const p = clock(at, user.timezone);
    const out: Limited[] = [{ type: 'daily', period: p.daily, limit: plan.dailyPostLimit }];
    if (plan.monthlyPostLimit !== null) out.push({ type: 'monthly', period: p.monthly, limit: plan.monthlyPostLimit });
    return out;
  }

  function mark(userId: string, m: Mark): void {
    const old = marks.get(userId);
    if (old && old.plan === m.plan && old.resetsAt > m.resetsAt && old.resetsAt > nowMs()) return; // keep the longer one
    if (marks.size >= MAX_MARKS && !old) marks.delete(marks.keys().next().value as string);
    marks.set(userId, m);
    gate.wake(userId); // posts waiting for a slot are answered from memory now
  }

  const counterPeriod = (l: Limited, at: number): CounterPeriod => ({
    key: `${l.type === 'daily' ? 'd' : 'm'}:${l.period.date}`,
    cap: l.limit,
    ttlSeconds: Math.ceil((l.period.resetsAt - at) / 1000) + 86_400,
  });

  /** A counter call bounded in time; a late success gives its hold back, so nothing stays held by mistake. */
  async function reserveWithin(
    userId: string,
    periods: CounterPeriod[],
    token: string,
    seeds?: number[],
  ): Promise<ReserveResult | undefined> {
    const call = counters.reserve(userId, periods, token, seeds);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    try {
      const r = await Promise.race([call, late]);
      if (r === undefined) {
        counterFailed(new Error(`quota counter call took longer than ${timeoutMs} ms`));
        call
          .then((x) =>
            x.status === 'held'
              ? counters.settle(
                  userId,
                  periods.map((p) => p.key),
                  token,
                  [],
                )
              : undefined,
          )
          .catch(() => undefined);
      }
      return r;
    } catch (err) {
      counterFailed(err);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The ticket of each item that is a post (made now if reserveQuota did not run for it), aligned. */
  async function ticketsOf(items: readonly { user: UserRecord; ev: NostrEvent }[]): Promise<(Ticket | undefined)[]> {
    const out: (Ticket | undefined)[] = [];
    for (const { user, ev } of items) {
      if (!isPost(ev.kind)) {
        out.push(undefined);
        continue;
      }
      let ticket = tickets.get(ev);
      if (!ticket) {
        const plan = await plans.effectivePlan(user.id);
        ticket = { plan, limits: limitsFor(user, plan, nowMs()) };
        tickets.set(ev, ticket);
      }
      out.push(ticket);
    }
    return out;
  }

  /** One ledger row per (user, period) for these uncapped posts, with the number of posts each adds. */
  function unlimitedRows(items: readonly { userId: string; ticket: Ticket }[]): UnlimitedCharge[] {
    const rows = new Map<string, UnlimitedCharge>();
    for (const { userId, ticket } of items) {
      for (const l of ticket.limits) {
        const key = `${userId}:${l.type}`;
        const row = rows.get(key);
        rows.set(
          key,
          row
            ? { ...row, n: row.n + 1 }
            : { userId, type: l.type, date: l.period.date, resetsAt: isoSeconds(l.period.resetsAt), n: 1 },
        );
      }
    }
    return [...rows.values()];
  }

  /** The answer from memory for a user marked as at the limit (the mark is dropped once stale). */
  async function markedRefusal(user: UserRecord): Promise<Refusal | undefined> {
    const m = marks.get(user.id);
    if (!m) return undefined;
    if (nowMs() >= m.resetsAt) {
      marks.delete(user.id);
      return undefined;
    }
    const plan = await plans.effectivePlan(user.id);
    if (plan.code !== m.plan || limitOf(plan, m.type) !== m.limit) {
      marks.delete(user.id);
      return undefined;
    }
    return limitReached(plan, m.type, m.limit, m.used, m.resetsAt);
  }

  const ledgerPeriods = (ticket: Ticket): LedgerPeriod[] =>
    ticket.limits.map((l) => ({
      type: l.type,
      date: l.period.date,
      limit: l.limit,
      resetsAt: isoSeconds(l.period.resetsAt),
    }));

  const samePeriods = (a: Ticket, b: Ticket): boolean =>
    a.limits.length === b.limits.length &&
    a.limits.every((l, i) => l.period.date === b.limits[i]!.period.date && l.limit === b.limits[i]!.limit);

  /** The k-th post (0-based, batch order) of a user whose posts were charged together: its count, or its refusal. */
  function settleCharge(user: UserRecord, ticket: Ticket, r: PostChargeResult, k: number): Refusal | undefined {
    if (k < r.taken) {
      const charged: Partial<Record<PeriodType, number>> = {};
      for (const l of ticket.limits) charged[l.type] = (r.before[l.type] ?? 0) + k + 1;
      ticket.charged = charged;
      return undefined;
    }
    const l = ticket.limits.find((x) => x.type === r.refusedBy?.type) as Limited;
    const used = (r.before[l.type] ?? 0) + r.taken;
    ticket.refused = { type: l.type, used };
    mark(user.id, { plan: ticket.plan.code, type: l.type, limit: l.limit, used, resetsAt: l.period.resetsAt });
    return limitReached(ticket.plan, l.type, l.limit, used, l.period.resetsAt);
  }

  const stages: Stages = {
    async precheckQuota(user, ev) {
      if (!isPost(ev.kind)) return undefined;
      const refused = await markedRefusal(user);
      if (refused) return refused;
      const slots = smallestCap(await plans.effectivePlan(user.id));
      if (slots === undefined) return undefined;
      if (await gate.enter(user.id, ev.id, Math.max(1, slots), () => !marks.has(user.id))) return undefined;
      return markedRefusal(user);
    },

    async reserveQuota(user, ev) {
      if (!isPost(ev.kind)) return undefined;
      const at = nowMs();
      const plan = await plans.effectivePlan(user.id);
      const ticket: Ticket = { plan, limits: limitsFor(user, plan, at) };
      tickets.set(ev, ticket);
      const capped = ticket.limits.filter((l) => l.limit >= 0);
      if (capped.length === 0) return undefined; // unlimited: nothing to check, the ledger only counts
      // The ledger's charge in the event's own statement decides whether a post without a hold fits. The author's
      // other posts sent meanwhile take holds not counting it: one more than the cap may reach the ledger, which
      // refuses it.
      const unheld = (): boolean => !unheldAuthors.has(user.id) && capped.every((l) => l.limit >= 1);
      if (user.unsaved && unheld()) return letThrough(user, ticket, capped);
      const periods = capped.map((l) => counterPeriod(l, at));
      const token = `${instance}:${++seq}`;
      // a new author (an account not saved yet) has no ledger rows: their counters start at 0, no need to read it
      let r = await reserveWithin(user.id, periods, token, user.unsaved ? capped.map(() => 0) : undefined);
      // no counter: the author's first post of the period (or Redis lost it); reading the ledger to make one would
      // cost this post two round trips more, so it goes without a hold and its count makes the counter after it
      if (r?.status === 'missing' && unheld()) return letThrough(user, ticket, capped);
      if (r?.status === 'missing') {
        const used = await readUsage(
          deps.db,
          user.id,
          capped.map((l) => ({ type: l.type, date: l.period.date })),
        );
        r = await reserveWithin(
          user.id,
          periods,
          token,
          capped.map((l) => used[l.type]),
        );
      }
      if (r === undefined || r.status === 'missing') return undefined; // no counters now: Postgres decides
      if (r.status === 'held') {
        ticket.holder = user.id;
        ticket.token = token;
        ticket.held = capped;
        return undefined;
      }
      const l = capped[r.index] as Limited;
      if (r.held > 0) return limitInFlight(plan, l, r.used, r.held);
      // u is a count Postgres committed, so the user is at the limit until the reset: remember it.
      mark(user.id, { plan: plan.code, type: l.type, limit: l.limit, used: r.used, resetsAt: l.period.resetsAt });
      return limitReached(plan, l.type, l.limit, r.used, l.period.resetsAt);
    },

    async chargeQuota(trx, user, ev) {
      return (await stages.chargeQuotaBatch(trx, [{ user, ev }]))[0];
    },

    // Group commit: posts of unlimited users are counted with one upsert for the whole batch; posts of users with
    // a limit are charged together (store/quotas.ts chargePosts: three statements however many), each user's
    // first posts in batch order taking what room is left.
    async chargeQuotaBatch(trx, items) {
      const out = new Array<Refusal | undefined>(items.length).fill(undefined);
      const ticketList = await ticketsOf(items);
      const uncapped: number[] = [];
      const byUser = new Map<string, number[]>(); // capped posts, in batch order
      const later: number[] = []; // a second set of periods for one user (a batch across midnight): one by one after
      items.forEach(({ user }, i) => {
        const ticket = ticketList[i];
        if (!ticket) return;
        if (!ticket.limits.some((l) => l.limit >= 0)) return void uncapped.push(i);
        const same = byUser.get(user.id);
        if (!same) byUser.set(user.id, [i]);
        else if (samePeriods(ticketList[same[0]!]!, ticket)) same.push(i);
        else later.push(i);
      });
      const charges = [...byUser.values()].map((idx) => ({
        userId: items[idx[0]!]!.user.id,
        periods: ledgerPeriods(ticketList[idx[0]!]!),
        n: idx.length,
      }));
      const results = await chargePosts(trx, charges);
      for (const idx of byUser.values()) {
        const { user } = items[idx[0]!]!;
        const r = results.get(user.id)!;
        idx.forEach((i, k) => (out[i] = settleCharge(user, ticketList[i]!, r, k)));
      }
      for (const i of later) {
        const { user } = items[i]!;
        const r = (await chargePosts(trx, [{ userId: user.id, periods: ledgerPeriods(ticketList[i]!), n: 1 }])).get(
          user.id,
        )!;
        out[i] = settleCharge(user, ticketList[i]!, r, 0);
      }
      const rows = unlimitedRows(uncapped.map((i) => ({ userId: items[i]!.user.id, ticket: ticketList[i]! })));
      stages.chargedInBatch(
        uncapped.map((i) => items[i]!),
        await chargeUnlimited(trx, rows),
      );
      return out;
    },

    // The one-statement write of a group commit: every post's periods with their limits, capped or not. The
    // counters above hold each capped post, so the statement's all-or-nothing charge fits almost always.
    async batchCharges(items) {
      const ticketList = await ticketsOf(items);
      return ticketList.map((t) => (t ? ledgerPeriods(t) : []));
    },

    chargedInBatch(items, totals) {
      // each event's own count, in batch order, for the usage records: the last one of a user sees the total
      const seen = new Map<string, number>();
      const added = new Map<string, number>();
      for (const { user, ev } of items) {
        for (const l of tickets.get(ev)?.limits ?? []) {
          const key = `${user.id}:${l.type}`;
          added.set(key, (added.get(key) ?? 0) + 1);
        }
      }
      for (const { user, ev } of items) {
        const ticket = tickets.get(ev);
        if (!ticket) continue;
        for (const l of ticket.limits) {
          const key = `${user.id}:${l.type}`;
          const k = (seen.get(key) ?? 0) + 1;
          seen.set(key, k);
          const total = totals.get(key) ?? added.get(key)!;
          ticket.charged = { ...ticket.charged, [l.type]: total - added.get(key)! + k };
        }
      }
    },

    onSettled(user, ev, outcome, committed, ctx) {
      if (!isPost(ev.kind)) return;
      gate.leave(user.id, ev.id);
      const ticket = tickets.get(ev);
      tickets.delete(ev);
      if (ticket) reportCounts(user, ticket, committed);
      if (outcome) record(user, ev, outcome, committed, ctx, ticket);
    },
  };

  /** A post let through without a hold (see reserveQuota): its count is recorded in the counters after it. */
  function letThrough(user: UserRecord, ticket: Ticket, capped: readonly Limited[]): undefined {
    unheldAuthors.add(user.id);
    ticket.holder = user.id;
    ticket.unheld = capped;
    return undefined;
  }

  let afterAnswers: (() => Promise<void>)[] = [];
  /** Runs the counter calls of every post answered in this turn together, after the answers were written. */
  function whenAnswered(call: () => Promise<void>): void {
    // one callback for all: the calls then leave in one write to Redis (ioredis pipelines what a turn sends)
    if (afterAnswers.length === 0)
      setImmediate(() => {
        const calls = afterAnswers;
        afterAnswers = [];
        for (const c of calls) c().catch(counterFailed);
      });
    afterAnswers.push(call);
  }

  /**
   * The counters learn how the post ended: its hold given back, the count Postgres committed (or refused at). Sent
   * after the answer: the call wakes Redis, which on a busy machine would otherwise run before the OK is written.
   */
  function reportCounts(user: UserRecord, ticket: Ticket, committed: boolean): void {
    const seen = (l: Limited): number | undefined =>
      committed ? ticket.charged?.[l.type] : ticket.refused?.type === l.type ? ticket.refused.used : undefined;
    const { token, held, unheld } = ticket;
    const at = nowMs();
    if (token && held) {
      const keys = held.map((l) => counterPeriod(l, at).key);
      const counts = held.map(seen);
      whenAnswered(() => counters.settle(ticket.holder ?? user.id, keys, token, counts));
    }
    if (!unheld) return;
    unheldAuthors.delete(ticket.holder!);
    const known = unheld.filter((l) => seen(l) !== undefined);
    if (known.length === 0) return;
    const periods = known.map((l) => counterPeriod(l, at));
    const counts = known.map((l) => seen(l)!);
    whenAnswered(() => counters.record(user.id, periods, counts));
  }

  function record(
    user: UserRecord,
    ev: NostrEvent,
    outcome: NonNullable<Parameters<Stages['onSettled']>[2]>,
    committed: boolean,
    ctx: AdmissionContext,
    ticket: Ticket | undefined,
  ): void {
    const at = new Date(nowMs());
    if (outcome.status === 'rejected' && outcome.quota) {
      const q = outcome.quota;
      deps.onRejected?.(q.plan, q.period);
      const day = clock(at.getTime(), user.timezone);
      deps.usage?.exceeded({
        userId: user.id,
        plan: q.plan,
        period: q.period,
        periodDate: q.period === 'daily' ? day.daily.date : day.monthly.date,
        limit: q.limit,
        used: q.used,
        resetsAt: q.resetsAt,
        at,
        via: ctx.via,
        ip: ctx.ip,
        timezone: user.timezone,
      });
      return;
    }
    const usage = deps.usage;
    if (!usage || !ticket) return;
    const daily = ticket.limits[0] as Limited;
    const platform = ctx.source?.platform;
    if (outcome.status === 'accepted' && committed) {
      const after = ticket.charged?.daily ?? 0;
      // One row a stored post: the charge is made by the statement that stores it, so this row is also the post's
      // success (a second 'post_success' row with the same event id was a quarter of the rows an accepted post wrote).
      usage.event({
        userId: user.id,
        type: 'quota_usage',
        action: 'post_charged',
        occurredAt: at,
        sourcePlatform: platform,
        postsUsedBefore: after - 1,
        postsUsedAfter: after,
        quotaLimit: daily.limit,
        data: {
          event_id: ev.id,
          kind: ev.kind,
          via: ctx.via,
          plan: ticket.plan.code,
          monthly_used: ticket.charged?.monthly ?? null,
        },
        ip: ctx.ip,
        timezone: user.timezone,
      });
      usage.post(user.id, daily.period.date, 'success', platform);
    } else if (outcome.status === 'rejected' && outcome.rejection.prefix === 'error') {
      usage.event({
        userId: user.id,
        type: 'post_failure',
        action: 'store_failed',
        occurredAt: at,
        sourcePlatform: platform,
        ip: ctx.ip,
        timezone: user.timezone,
        data: { event_id: ev.id, kind: ev.kind, via: ctx.via, reason: outcome.rejection.message },
      });
      usage.post(user.id, daily.period.date, 'failure', platform);
    }
  }

  return {
    stages,
    isPost,
    forget(userId) {
      marks.delete(userId);
      gate.wake(userId);
    },
    async status(user) {
      const plan = await plans.effectivePlan(user.id);
      const limits = limitsFor(user, plan, nowMs());
      const used = await readUsage(
        deps.db,
        user.id,
        limits.map((l) => ({ type: l.type, date: l.period.date })),
      );
      const usageOf = (l: Limited): PeriodUsage => ({
        used: used[l.type],
        limit: l.limit,
        remaining: l.limit < 0 ? -1 : Math.max(0, l.limit - used[l.type]),
        resets_at: isoSeconds(l.period.resetsAt),
      });
      const monthly = limits.find((l) => l.type === 'monthly');
      return { plan: plan.code, daily: usageOf(limits[0] as Limited), monthly: monthly ? usageOf(monthly) : null };
    },
  };
}
