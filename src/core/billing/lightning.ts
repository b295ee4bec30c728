// Lightning: a plan period bought with an invoice from the operator's own wallet over Nostr Wallet Connect (NIP-47,
// nwc-wallet.ts). The wallet is the only authority: an invoice is paid when the wallet says so, by a payment_received
// notification or, as a fallback that always runs, by lookup_invoice asked with backoff until the invoice expires
// (and a few times after, for late payments). Whichever comes first credits the payment, once across processes: the
// ledger records the payment hash as a provider event in the same transaction (a second delivery changes nothing),
// and the invoice row moves from pending (or expired) to paid by a conditional update under the user's lock.
//
// What a payment buys follows lightning-periods.ts: a period of its plan and cycle that starts now, or when the
// user's paid time ends (extending the run of the same plan). Periods do not renew: when the last one ends the user
// is back on basic (applyPeriods, on the same timer as the polling). Provider code `nwc`, payment method `lightning`,
// amounts in satoshis (currency `SAT`).
import type { Knex } from 'knex';
import * as nip19 from 'nostr-tools/nip19';
import type { Logger } from '../../log.js';
import { findProviderSubscription } from '../../store/payments.js';
import {
  activeSubscriptionKey,
  checkableInvoicesOfUser,
  claimDueInvoices,
  findInvoice,
  insertInvoice,
  livePaidInvoices,
  markExpired,
  markPaid,
  scheduleCheck,
  usersWithPeriodChanges,
  type LightningInvoice,
} from '../../store/lightning-invoices.js';
import type { Metrics } from '../ops/index.js';
import type { Plans } from '../quota/index.js';
import { BillingError, notConfigured } from './errors.js';
import type { BillingCycle, BillingFacts, PaymentFact, PaymentStatus } from './facts.js';
import type { BillingLedger } from './ledger.js';
import { placePeriod, stateAt, type PaidPeriod } from './lightning-periods.js';
import type { LightningWallet, WalletInvoice } from './nwc-wallet.js';

const LIGHTNING_PROVIDER = 'nwc';
const METHOD = 'lightning';
const CURRENCY = 'SAT';
type Cycle = Exclude<BillingCycle, 'lifetime'>;

/** The longest wait between two lookups of a pending invoice. */
const MAX_POLL_MS = 30_000;
/** Lookups after the expiry, counted from it: a payment the wallet settles late is still found without a notification. */
const LATE_CHECKS_MS = [60_000, 10 * 60_000, 60 * 60_000];
/** How long a claimed invoice is left to the process that claimed it. */
const LEASE_MS = 2 * 60_000;
const BATCH = 50;
/** The longest GET …/lightning/:hash?wait= */
export const MAX_WAIT_SECONDS = 30;

export interface LightningSettings {
  /** LIGHTNING_PRICES: `plan:cycle=sats` entries. */
  readonly prices: readonly string[];
  readonly expirySeconds: number;
  /** The first lookup of a pending invoice comes this long after it was made; the wait doubles after each one. */
  readonly pollMs: number;
  /** Named in each invoice's description (RELAY_NAME). */
  readonly serviceName: string;
}

export interface LightningDeps {
  readonly settings: LightningSettings;
  /** undefined when NWC_URL is unset. */
  readonly wallet: LightningWallet | undefined;
  readonly db: Knex;
  readonly ledger: BillingLedger;
  readonly plans: Plans;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'billingProviderErrors' | 'lightningInvoices'> | undefined;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly nowMs?: () => number;
}

type InvoiceStatus = 'pending' | 'paid' | 'expired';

export interface InvoiceView {
  readonly paymentHash: string;
  readonly invoice: string;
  readonly amountSats: number;
  readonly plan: string;
  readonly billingCycle: BillingCycle;
  readonly status: InvoiceStatus;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly paidAt: Date | null;
  readonly periodStart: Date | null;
  readonly periodEnd: Date | null;
}

/** What one settlement did: credited now, already credited, not ours, or refused (paid less than asked). */
type Settlement = 'credited' | 'duplicate' | 'unknown' | 'refused';

export interface Lightning {
  missingSetting(): string | undefined;
  /** Plan code → cycle → price in sats (empty when NWC_URL is unset). */
  readonly prices: ReadonlyMap<string, ReadonlyMap<Cycle, number>>;
  createInvoice(user: { id: string; pubkey: string }, plan: string, cycle: string): Promise<InvoiceView>;
  /** The user's invoice; with `waitMs`, answered once it is no longer pending or the time is up. */
  invoice(userId: string, paymentHash: string, waitMs?: number): Promise<InvoiceView | undefined>;
  /** A payment the wallet reports (its payment_received notification). */
  paymentReceived(tx: WalletInvoice): Promise<Settlement>;
  /** Looks up the invoices due at `asOf` (default now); returns how many were looked up. */
  checkDue(asOf?: Date): Promise<number>;
  /** Starts the periods due and ends the ones over at `asOf`; returns how many users changed. */
  applyPeriods(asOf?: Date): Promise<number>;
  /** Looks up the user's open invoices now; undefined when they have none. */
  refresh(userId: string): Promise<'applied' | 'unavailable' | undefined>;
  start(): void;
  stop(): Promise<void>;
}

/** LIGHTNING_PRICES → plan → cycle → sats. */
export function lightningPrices(entries: readonly string[]): Map<string, Map<Cycle, number>> {
  const out = new Map<string, Map<Cycle, number>>();
  for (const entry of entries) {
    const [key = '', sats = ''] = entry.split('=');
    const [plan = '', cycle = ''] = key.split(':');
    const cycles = out.get(plan) ?? new Map<Cycle, number>();
    cycles.set(cycle as Cycle, Number(sats));
    out.set(plan, cycles);
  }
  return out;
}

const view = (i: LightningInvoice): InvoiceView => ({
  paymentHash: i.paymentHash,
  invoice: i.bolt11,
  amountSats: i.amountSats,
  plan: i.planCode,
  billingCycle: i.billingCycle,
  status: i.state,
  createdAt: i.createdAt,
  expiresAt: i.expiresAt,
  paidAt: i.settledAt,
  periodStart: i.periodStart,
  periodEnd: i.periodEnd,
});

const periodOf = (i: LightningInvoice): PaidPeriod => ({
  paymentHash: i.paymentHash,
  subscriptionKey: i.subscriptionKey ?? i.paymentHash,
  planCode: i.planCode,
  billingCycle: i.billingCycle as Cycle,
  amountSats: i.amountSats,
  start: i.periodStart ?? i.createdAt,
  end: i.periodEnd ?? i.createdAt,
});

const isPaid = (tx: WalletInvoice) => tx.state === 'settled' || (tx.state === undefined && tx.settledAt !== undefined);

export function createLightning(deps: LightningDeps): Lightning {
  const s = deps.settings;
  const nowMs = deps.nowMs ?? Date.now;
  const log = deps.log.child({ mod: 'lightning' });
  const prices = deps.wallet ? lightningPrices(s.prices) : new Map<string, Map<Cycle, number>>();
  const waiters = new Map<string, Set<() => void>>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopNotifications: (() => void) | undefined;
  let closing = false;

  function wallet(): LightningWallet {
    if (!deps.wallet) throw notConfigured('NWC_URL', 'Lightning');
    return deps.wallet;
  }

  function wake(paymentHash: string): void {
    for (const done of waiters.get(paymentHash) ?? []) done();
  }

  function payment(i: LightningInvoice, status: PaymentStatus, extra: Partial<PaymentFact> = {}): PaymentFact {
    return {
      provider: LIGHTNING_PROVIDER,
      providerPaymentId: i.paymentHash,
      userId: i.userId,
      amount: String(i.amountSats),
      currency: CURRENCY,
      status,
      paymentMethod: METHOD,
      ...extra,
    };
  }

  /** The subscription facts the user's paid periods give at `now` (in the ledger's transaction, under the user's lock). */
  async function periodFacts(
    trx: Knex.Transaction,
    userId: string,
    now: Date,
    extra: PaidPeriod[] = [],
  ): Promise<BillingFacts> {
    const activeKey = await activeSubscriptionKey(trx, userId, LIGHTNING_PROVIDER);
    const periods = [
      ...(await livePaidInvoices(trx, userId, LIGHTNING_PROVIDER, now, activeKey)).map(periodOf),
      ...extra,
    ];
    const { current, ended } = stateAt(now, periods, activeKey);
    const ends = ended ? [{ provider: LIGHTNING_PROVIDER, providerSubscriptionId: ended.key, at: ended.at }] : [];
    if (!current) return { ends };
    // Facts derived under the lock are the newest there are: never older than the state already applied.
    const known = await findProviderSubscription(trx, LIGHTNING_PROVIDER, current.key);
    const observedAt =
      known?.providerStateAt && known.providerStateAt >= now ? new Date(known.providerStateAt.getTime() + 1) : now;
    return {
      ends,
      subscription: {
        provider: LIGHTNING_PROVIDER,
        providerSubscriptionId: current.key,
        userId,
        planCode: current.planCode,
        billingCycle: current.billingCycle,
        status: 'active',
        amount: String(current.amountSats),
        currency: CURRENCY,
        periodStart: current.start,
        periodEnd: current.end,
        endsAt: current.end,
        canceledAt: null,
        observedAt,
      },
    };
  }

  async function settle(
    inv: LightningInvoice,
    tx: WalletInvoice,
    source: 'notification' | 'lookup',
  ): Promise<Settlement> {
    if (tx.amountMsats < inv.amountSats * 1000) {
      log.error(
        { paymentHash: inv.paymentHash, paidMsats: tx.amountMsats, askedSats: inv.amountSats },
        'the wallet reports less paid than the invoice asked; not credited',
      );
      return 'refused';
    }
    const settledAt = tx.settledAt ? new Date(tx.settledAt * 1000) : new Date(nowMs());
    let late = false;
    let placed: PaidPeriod | undefined;
    const outcome = await deps.ledger.record(
      inv.userId,
      async (trx) => {
        const now = new Date(nowMs());
        const activeKey = await activeSubscriptionKey(trx, inv.userId, LIGHTNING_PROVIDER);
        const live = (await livePaidInvoices(trx, inv.userId, LIGHTNING_PROVIDER, now, activeKey)).map(periodOf);
        const place = placePeriod(now, live, {
          paymentHash: inv.paymentHash,
          planCode: inv.planCode,
          billingCycle: inv.billingCycle as Cycle,
        });
        const before = await findInvoice(trx, inv.paymentHash);
        if (
          !(await markPaid(trx, inv.paymentHash, {
            settledAt,
            periodStart: place.start,
            periodEnd: place.end,
            subscriptionKey: place.subscriptionKey,
          }))
        )
          return {};
        late = before?.state === 'expired';
        placed = { ...periodOf(inv), subscriptionKey: place.subscriptionKey, start: place.start, end: place.end };
        const facts = await periodFacts(trx, inv.userId, now, [placed]);
        const paid = payment(inv, 'succeeded', {
          providerSubscriptionId: place.subscriptionKey,
          processedAt: settledAt,
        });
        return { ...facts, payments: [paid] };
      },
      {
        actor: LIGHTNING_PROVIDER,
        takeSlot: true,
        event: {
          provider: LIGHTNING_PROVIDER,
          eventId: inv.paymentHash,
          type: 'payment_received',
          payload: {
            payment_hash: inv.paymentHash,
            amount_msats: tx.amountMsats,
            settled_at: tx.settledAt ?? null,
            source,
          },
        },
      },
    );
    if (outcome.duplicate || !placed) return 'duplicate';
    deps.metrics?.lightningInvoices.inc({ outcome: late ? 'paid_late' : 'paid' });
    log.info(
      {
        userId: inv.userId,
        paymentHash: inv.paymentHash,
        plan: inv.planCode,
        source,
        late,
        periodStart: placed.start,
        periodEnd: placed.end,
        applied: outcome.applied,
      },
      'Lightning payment credited',
    );
    wake(inv.paymentHash);
    return 'credited';
  }

  /** The first of the late lookups still ahead at `now`, or null when none is left. */
  function lateCheck(inv: LightningInvoice, now: number): Date | null {
    const at = LATE_CHECKS_MS.map((ms) => inv.expiresAt.getTime() + ms).find((t) => t > now);
    return at === undefined ? null : new Date(at);
  }

  async function expire(inv: LightningInvoice, now: number): Promise<void> {
    const outcome = await deps.ledger.record(
      inv.userId,
      async (trx) => {
        if (!(await markExpired(trx, inv.paymentHash, lateCheck(inv, now)))) return {};
        return {
          payments: [
            payment(inv, 'canceled', { failedAt: new Date(now), failureReason: 'the invoice expired unpaid' }),
          ],
        };
      },
      { actor: LIGHTNING_PROVIDER },
    );
    if (outcome.applied.length === 0) return;
    deps.metrics?.lightningInvoices.inc({ outcome: 'expired' });
    log.info({ userId: inv.userId, paymentHash: inv.paymentHash }, 'Lightning invoice expired unpaid');
    wake(inv.paymentHash);
  }

  /** When to look up a pending invoice again: the wait doubles, at most MAX_POLL_MS, and once just after it expires. */
  function nextPoll(inv: LightningInvoice, now: number): Date {
    const wait = Math.min(s.pollMs * 2 ** Math.min(inv.checks, 20), MAX_POLL_MS);
    const afterExpiry = inv.expiresAt.getTime() + 1000;
    return new Date(now < afterExpiry ? Math.min(now + wait, afterExpiry) : now + wait);
  }

  /** One lookup_invoice and what follows from the answer. */
  async function lookUp(inv: LightningInvoice): Promise<'applied' | 'unavailable'> {
    const answer = await wallet().lookupInvoice(inv.paymentHash);
    const now = nowMs();
    const expired = now >= inv.expiresAt.getTime();
    if (!answer.ok && !(answer.kind === 'rejected' && answer.code === 'NOT_FOUND' && expired)) {
      // The wallet is down or erring: nothing changes (an expired invoice stays pending until it answers).
      deps.metrics?.billingProviderErrors.inc({
        provider: LIGHTNING_PROVIDER,
        operation: 'lookup_invoice',
        kind: answer.kind,
      });
      log.warn(
        { paymentHash: inv.paymentHash, why: answer.reason, checks: inv.checks + 1 },
        'Lightning invoice lookup failed; asked again later',
      );
      await scheduleCheck(deps.db, inv.paymentHash, nextPoll(inv, now));
      return 'unavailable';
    }
    if (answer.ok && isPaid(answer.value)) {
      await settle(inv, answer.value, 'lookup');
      return 'applied';
    }
    const walletGaveUp = !answer.ok || answer.value.state === 'expired' || answer.value.state === 'failed';
    if (inv.state === 'pending' && (expired || walletGaveUp)) await expire(inv, now);
    else if (inv.state === 'pending') await scheduleCheck(deps.db, inv.paymentHash, nextPoll(inv, now));
    else await scheduleCheck(deps.db, inv.paymentHash, lateCheck(inv, now));
    return 'applied';
  }

  async function guardedLookUp(inv: LightningInvoice): Promise<'applied' | 'unavailable'> {
    try {
      return await lookUp(inv);
    } catch (err) {
      log.error({ err, paymentHash: inv.paymentHash }, 'Lightning invoice lookup could not be applied');
      await scheduleCheck(deps.db, inv.paymentHash, nextPoll(inv, nowMs())).catch(() => undefined);
      return 'unavailable';
    }
  }

  async function checkDue(asOf = new Date(nowMs())): Promise<number> {
    if (!deps.wallet) return 0;
    let n = 0;
    for (;;) {
      const batch = await claimDueInvoices(deps.db, asOf, new Date(asOf.getTime() + LEASE_MS), BATCH);
      for (const inv of batch) await guardedLookUp(inv);
      n += batch.length;
      if (batch.length < BATCH) return n;
    }
  }

  async function applyPeriods(asOf = new Date(nowMs())): Promise<number> {
    const users = await usersWithPeriodChanges(deps.db, LIGHTNING_PROVIDER, asOf, BATCH);
    for (const userId of users) {
      try {
        const outcome = await deps.ledger.record(userId, (trx) => periodFacts(trx, userId, asOf), {
          actor: LIGHTNING_PROVIDER,
          takeSlot: true,
        });
        log.info({ userId, applied: outcome.applied }, 'Lightning periods applied');
      } catch (err) {
        log.error({ err, userId }, 'Lightning periods could not be applied');
      }
    }
    return users.length;
  }

  async function tick(): Promise<void> {
    await applyPeriods();
    await checkDue();
  }

  async function paymentReceived(tx: WalletInvoice): Promise<Settlement> {
    const inv = await findInvoice(deps.db, tx.paymentHash);
    if (!inv) {
      log.info(
        { paymentHash: tx.paymentHash },
        'the wallet received a payment for an invoice this service did not make; ignored',
      );
      return 'unknown';
    }
    if (inv.state === 'paid') return 'duplicate';
    return settle(inv, tx, 'notification');
  }

  return {
    missingSetting: () => (deps.wallet ? undefined : 'NWC_URL'),
    prices,
    async createInvoice(user, plan, cycle) {
      const w = wallet();
      const sats = prices.get(plan)?.get(cycle as Cycle);
      const planRow = sats ? await deps.plans.byCode(plan) : undefined;
      if (!sats || !planRow) {
        const offered =
          [...prices].flatMap(([p, cycles]) => [...cycles.keys()].map((c) => `${p}:${c}`)).join(', ') || 'none';
        throw new BillingError(
          'unknown_price',
          `plan "${plan}" is not sold for Lightning billed ${cycle} (offered: ${offered})`,
        );
      }
      const description = `${s.serviceName}: ${planRow.name} plan, ${cycle}, for ${nip19.npubEncode(user.pubkey)}`;
      const made = await w.makeInvoice({ amountMsats: sats * 1000, description, expirySeconds: s.expirySeconds });
      const wrong =
        made.ok && (made.value.amountMsats !== sats * 1000 || !made.value.invoice.toLowerCase().startsWith('ln'));
      if (!made.ok || wrong) {
        const why = made.ok ? 'it answered an invoice for another amount' : made.reason;
        const kind = made.ok ? 'rejected' : made.kind;
        deps.metrics?.lightningInvoices.inc({ outcome: 'wallet_error' });
        deps.metrics?.billingProviderErrors.inc({ provider: LIGHTNING_PROVIDER, operation: 'make_invoice', kind });
        log.warn({ userId: user.id, plan, cycle, kind, why }, 'the Lightning wallet could not make an invoice');
        const what =
          kind === 'rejected'
            ? `the Lightning wallet refused to make the invoice (${why})`
            : `the Lightning wallet could not be reached (${why})`;
        throw new BillingError('provider_unavailable', `${what}; nothing was stored, try again later`);
      }
      const tx = made.value;
      const now = nowMs();
      const invoice: LightningInvoice = {
        paymentHash: tx.paymentHash,
        userId: user.id,
        planCode: plan,
        billingCycle: cycle as Cycle,
        amountSats: sats,
        bolt11: tx.invoice,
        createdAt: new Date(now),
        expiresAt: new Date(tx.expiresAt ? tx.expiresAt * 1000 : now + s.expirySeconds * 1000),
        state: 'pending',
        nextCheckAt: new Date(now + s.pollMs),
        checks: 0,
        settledAt: null,
        periodStart: null,
        periodEnd: null,
        subscriptionKey: null,
      };
      await deps.ledger.record(
        user.id,
        { payments: [payment(invoice, 'pending')] },
        {
          actor: 'user',
          prepare: (trx) => insertInvoice(trx, { ...invoice, nextCheckAt: invoice.nextCheckAt as Date }),
        },
      );
      deps.metrics?.lightningInvoices.inc({ outcome: 'created' });
      log.info({ userId: user.id, paymentHash: tx.paymentHash, plan, cycle, sats }, 'Lightning invoice made');
      return view(invoice);
    },
    async invoice(userId, paymentHash, waitMs = 0) {
      const until = nowMs() + Math.min(waitMs, MAX_WAIT_SECONDS * 1000);
      for (;;) {
        const inv = await findInvoice(deps.db, paymentHash);
        if (!inv || inv.userId !== userId) return undefined;
        const left = until - nowMs();
        if (inv.state !== 'pending' || left <= 0 || closing) return view(inv);
        // Woken at once when this process settles it; another process's settlement is seen within a second.
        await new Promise<void>((resolve) => {
          const set = waiters.get(paymentHash) ?? new Set<() => void>();
          const done = () => {
            clearTimeout(t);
            set.delete(done);
            if (set.size === 0) waiters.delete(paymentHash);
            resolve();
          };
          const t = setTimeout(done, Math.min(left, 1000));
          set.add(done);
          waiters.set(paymentHash, set);
        });
      }
    },
    paymentReceived,
    checkDue,
    applyPeriods,
    async refresh(userId) {
      if (!deps.wallet) return undefined;
      const open = await checkableInvoicesOfUser(deps.db, userId);
      if (open.length === 0) return undefined;
      const outcomes = await Promise.all(open.map(guardedLookUp));
      return outcomes.includes('unavailable') ? 'unavailable' : 'applied';
    },
    start() {
      if (timer) return;
      stopNotifications = deps.wallet?.onPaymentReceived((tx) => {
        if (!isPaid(tx) && tx.state !== undefined) return;
        paymentReceived(tx).catch((err: unknown) =>
          log.error(
            { err, paymentHash: tx.paymentHash },
            'a Lightning payment could not be credited; the lookup will find it',
          ),
        );
      });
      // Without a wallet the periods already bought still end (and start) on time; nothing is polled.
      timer = setInterval(
        () => {
          if (running) return;
          running = tick()
            .catch((err: unknown) => log.error({ err }, 'Lightning invoice checks failed'))
            .finally(() => (running = undefined));
        },
        deps.wallet ? Math.max(100, Math.min(s.pollMs, 5000)) : 60_000,
      );
      timer.unref();
    },
    async stop() {
      closing = true;
      for (const set of waiters.values()) for (const done of [...set]) done();
      if (timer) clearInterval(timer);
      timer = undefined;
      stopNotifications?.();
      await running;
      deps.wallet?.close();
    },
  };
}
