// ExtensionPay: the extension's payment service. It sends no webhooks; the service reads a user's paid status itself
// with the user's ExtPay key, `GET {EXTENSIONPAY_URL}/extension/{id}/api/v2/user?api_key=KEY`, the request ExtPay.js
// makes, and turns the documented user object into facts (facts.ts). The key is a credential: it is never logged,
// and the URL that holds it never leaves this file.
import type { BillingCycle, BillingFacts, PaymentFact, SubscriptionFact, SubscriptionStatus } from './facts.js';
import { fromMinorUnits } from './facts.js';

interface ExtPayPlan {
  readonly unitAmountCents: number;
  readonly currency: string;
  readonly nickname: string | null;
  readonly interval: 'month' | 'year' | 'once';
  readonly intervalCount: number | null;
}

/** The user object of ExtPay's /api/v2/user (dates as ISO strings on the wire). */
export interface ExtPayUser {
  readonly paid: boolean;
  readonly paidAt: string | null;
  readonly email: string | null;
  readonly installedAt: string | null;
  readonly trialStartedAt: string | null;
  readonly plan: ExtPayPlan | null;
  readonly subscriptionStatus?: 'active' | 'past_due' | 'canceled' | undefined;
  readonly subscriptionCancelAt?: string | null | undefined;
}

type ExtPayRead =
  | { readonly ok: true; readonly user: ExtPayUser; readonly at: Date }
  /** unavailable: network error, timeout, 5xx, 429 or a malformed answer; rejected: ExtPay refused the key (4xx). */
  | { readonly ok: false; readonly kind: 'unavailable' | 'rejected'; readonly reason: string };

export interface ExtPayClient {
  readUser(apiKey: string): Promise<ExtPayRead>;
}

export interface ExtPayClientOptions {
  readonly baseUrl: string;
  readonly extensionId: string;
  readonly timeoutMs: number;
  /** Attempts per read when ExtPay is unavailable (with a doubling pause between them). */
  readonly attempts?: number;
  readonly retryDelayMs?: number;
}

const isDate = (v: unknown): v is string | null =>
  v === null || (typeof v === 'string' && !Number.isNaN(Date.parse(v)));

function parsePlan(v: unknown): ExtPayPlan | null | undefined {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') return undefined;
  const p = v as Record<string, unknown>;
  if (typeof p.unitAmountCents !== 'number' || typeof p.currency !== 'string') return undefined;
  if (p.interval !== 'month' && p.interval !== 'year' && p.interval !== 'once') return undefined;
  return {
    unitAmountCents: p.unitAmountCents,
    currency: p.currency,
    nickname: typeof p.nickname === 'string' ? p.nickname : null,
    interval: p.interval,
    intervalCount: typeof p.intervalCount === 'number' && p.intervalCount >= 1 ? p.intervalCount : null,
  };
}

/** The user object, or undefined when the answer is not one (a malformed answer is the provider's fault). */
export function parseExtPayUser(body: unknown): ExtPayUser | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const u = body as Record<string, unknown>;
  const plan = parsePlan(u.plan);
  if (typeof u.paid !== 'boolean' || plan === undefined || !isDate(u.paidAt ?? null)) return undefined;
  const status = u.subscriptionStatus;
  if (status !== undefined && status !== null && status !== 'active' && status !== 'past_due' && status !== 'canceled')
    return undefined;
  if (!isDate(u.subscriptionCancelAt ?? null)) return undefined;
  return {
    paid: u.paid,
    paidAt: (u.paidAt as string | null | undefined) ?? null,
    email: typeof u.email === 'string' ? u.email : null,
    installedAt: typeof u.installedAt === 'string' ? u.installedAt : null,
    trialStartedAt: typeof u.trialStartedAt === 'string' ? u.trialStartedAt : null,
    plan,
    subscriptionStatus: status ?? undefined,
    subscriptionCancelAt: (u.subscriptionCancelAt as string | null | undefined) ?? null,
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createExtPayClient(o: ExtPayClientOptions): ExtPayClient {
  const attempts = o.attempts ?? 2;
  const retryDelayMs = o.retryDelayMs ?? 300;

  async function once(apiKey: string): Promise<ExtPayRead> {
    const url = `${o.baseUrl}/extension/${encodeURIComponent(o.extensionId)}/api/v2/user?api_key=${encodeURIComponent(apiKey)}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(o.timeoutMs) });
    } catch (err) {
      // The error's text only (undici names the host and port, not the query); never the URL.
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return { ok: false, kind: 'unavailable', reason: cause ?? (err as Error).name };
    }
    const text = await res.text().catch(() => '');
    if (res.status >= 500 || res.status === 429 || res.status === 408)
      return { ok: false, kind: 'unavailable', reason: `HTTP ${res.status}` };
    if (!res.ok) return { ok: false, kind: 'rejected', reason: `HTTP ${res.status}` };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { ok: false, kind: 'unavailable', reason: 'the answer is not JSON' };
    }
    const user = parseExtPayUser(body);
    return user
      ? { ok: true, user, at: new Date() }
      : { ok: false, kind: 'unavailable', reason: 'the answer is not an ExtPay user object' };
  }

  return {
    async readUser(apiKey) {
      let read = await once(apiKey);
      for (let i = 1; i < attempts && !read.ok && read.kind === 'unavailable'; i++) {
        await pause(retryDelayMs * 2 ** (i - 1));
        read = await once(apiKey);
      }
      return read;
    },
  };
}

/** EXTENSIONPAY_PLANS (`nickname=plan_code` entries) as a lookup; nicknames compare trimmed and case-insensitive. */
export function extPayPlanMap(entries: readonly string[]): (nickname: string | null) => string | undefined {
  const map = new Map<string, string>();
  for (const e of entries) {
    const eq = e.lastIndexOf('=');
    map.set(e.slice(0, eq).trim().toLowerCase(), e.slice(eq + 1).trim());
  }
  return (nickname) => (nickname === null ? undefined : map.get(nickname.trim().toLowerCase()));
}

/** `months` calendar months after `d` (UTC), the day clamped to the month's length (Jan 31 + 1 = Feb 28/29). */
export function addMonths(d: Date, months: number): Date {
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + months;
  const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const out = new Date(d);
  out.setUTCFullYear(y, m, Math.min(d.getUTCDate(), last));
  return out;
}

/**
 * The billing period holding `at`, counted from the first payment in steps of the plan's interval: ExtPay gives no
 * period, so this is the estimate (a renewal moved by a failed payment shifts it, which the status shows anyway).
 */
export function periodAround(anchor: Date, stepMonths: number, at: Date): { start: Date; end: Date } {
  const months = (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + at.getUTCMonth() - anchor.getUTCMonth();
  let k = Math.max(0, Math.floor(months / stepMonths) - 1);
  while (addMonths(anchor, (k + 1) * stepMonths) <= at) k++;
  return { start: addMonths(anchor, k * stepMonths), end: addMonths(anchor, (k + 1) * stepMonths) };
}

export interface ExtPayContext {
  readonly userId: string;
  /** The key's fingerprint: the subscription's provider id (one ExtPay user, one subscription). */
  readonly fingerprint: string;
  readonly planFor: (nickname: string | null) => string | undefined;
}

export type ExtPayMapping =
  { readonly ok: true; readonly facts: BillingFacts } | { readonly ok: false; readonly nickname: string | null };

/**
 * The facts in one ExtPay user object. Status: `subscriptionStatus` for subscriptions; for a one-time plan, paid
 * means active (lifetime) and unpaid after a payment means canceled (refunded). Never paid: no facts. The payment of
 * `paidAt` is recorded once (its id holds the key's fingerprint and that date).
 */
export function extPayFacts(user: ExtPayUser, ctx: ExtPayContext, observedAt: Date): ExtPayMapping {
  const paidAt = user.paidAt ? new Date(user.paidAt) : null;
  const status: SubscriptionStatus | undefined =
    user.subscriptionStatus ?? (user.paid ? 'active' : paidAt ? 'canceled' : undefined);
  if (!status) return { ok: true, facts: {} };
  const plan = user.plan;
  const planCode = plan ? ctx.planFor(plan.nickname) : undefined;
  if (!plan || !planCode) return { ok: false, nickname: plan?.nickname ?? null };

  const cycle: BillingCycle = plan.interval === 'once' ? 'lifetime' : plan.interval === 'year' ? 'yearly' : 'monthly';
  const amount = fromMinorUnits(plan.unitAmountCents);
  const currency = plan.currency.toUpperCase();
  const anchor = paidAt ?? observedAt;
  const cancelAt = user.subscriptionCancelAt ? new Date(user.subscriptionCancelAt) : null;
  let periodStart = anchor;
  let periodEnd: Date | null = null;
  if (cycle !== 'lifetime') {
    const step = (plan.intervalCount ?? 1) * (cycle === 'yearly' ? 12 : 1);
    // A canceled subscription's last period is the one its end falls in, not the one holding today.
    const at = status === 'canceled' && cancelAt && cancelAt > anchor ? new Date(cancelAt.getTime() - 1) : observedAt;
    ({ start: periodStart, end: periodEnd } = periodAround(anchor, step, at));
  }
  const ended = status === 'canceled' ? (cancelAt ?? observedAt) : null;
  const subscription: SubscriptionFact = {
    provider: 'extensionpay',
    providerSubscriptionId: ctx.fingerprint,
    userId: ctx.userId,
    planCode,
    billingCycle: cycle,
    status,
    amount,
    currency,
    periodStart,
    periodEnd,
    endsAt: ended ?? cancelAt,
    canceledAt: ended,
    observedAt,
  };
  const payments: PaymentFact[] = paidAt
    ? [
        {
          provider: 'extensionpay',
          providerPaymentId: `extensionpay:${ctx.fingerprint.slice(0, 40)}:${Math.floor(paidAt.getTime() / 1000)}`,
          userId: ctx.userId,
          providerSubscriptionId: ctx.fingerprint,
          amount,
          currency,
          status: 'succeeded',
          processedAt: paidAt,
        },
      ]
    : [];
  return { ok: true, facts: { subscription, payments } };
}
