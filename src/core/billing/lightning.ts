// Lightning: a plan period bought with an invoice from the operator's own wallet over Nostr Wallet Connect (NIP-47,
// nwc-wallet.ts). The wallet is the only authority: an invoice is paid when the wallet says so, by a payment_received
// notification or by the lookups that always run (lightning-lookups.ts), whichever comes first; either way it is
// credited once across processes (lightning-credit.ts). What a payment buys follows lightning-periods.ts: a period
// that starts now, or when the user's paid time ends; periods do not renew, and when the last one ends the user is
// back on basic (applyPeriods, on the timer of the lookups). Provider code `nwc`, payment method `lightning`, amounts
// in satoshis (currency `SAT`).
import type { Knex } from 'knex';
import * as nip19 from 'nostr-tools/nip19';
import type { Logger } from '../../log.js';
import { findInvoice, insertInvoice, type LightningInvoice } from '../../store/lightning-invoices.js';
import type { Metrics } from '../ops/index.js';
import type { Plans } from '../quota/index.js';
import { BillingError, notConfigured } from './errors.js';
import type { BillingCycle } from './facts.js';
import type { BillingLedger } from './ledger.js';
import { createCredit, LIGHTNING_PROVIDER, lightningPayment, type Cycle, type Settlement } from './lightning-credit.js';
import { createLookups, isPaid } from './lightning-lookups.js';
import type { LightningWallet, WalletInvoice } from './nwc-wallet.js';

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

export interface InvoiceView {
  readonly paymentHash: string;
  readonly invoice: string;
  readonly amountSats: number;
  readonly plan: string;
  readonly billingCycle: BillingCycle;
  readonly status: 'pending' | 'paid' | 'expired';
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly paidAt: Date | null;
  readonly periodStart: Date | null;
  readonly periodEnd: Date | null;
}

export interface Lightning {
  /** Plan code → cycle → price in sats (empty when NWC_URL is unset). */
  readonly prices: ReadonlyMap<string, ReadonlyMap<Cycle, number>>;
  createInvoice(user: { id: string; pubkey: string }, plan: string, cycle: string): Promise<InvoiceView>;
  /** The user's invoice; with `waitMs`, answered once it is no longer pending or the time is up. */
  invoice(userId: string, paymentHash: string, waitMs?: number): Promise<InvoiceView | undefined>;
  /** A payment the wallet reports (its payment_received notification). */
  paymentReceived(tx: WalletInvoice): Promise<Settlement>;
  /** Looks up the invoices due at `asOf` (default now); returns how many were looked up. */
  checkDue(asOf?: Date): Promise<number>;
  /** Starts the periods due and ends the ones over at `asOf` (default now); returns how many users it looked at. */
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
    out.set(plan, (out.get(plan) ?? new Map<Cycle, number>()).set(cycle as Cycle, Number(sats)));
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

export function createLightning(deps: LightningDeps): Lightning {
  const s = deps.settings;
  const nowMs = deps.nowMs ?? Date.now;
  const log = deps.log.child({ mod: 'lightning' });
  const prices = deps.wallet ? lightningPrices(s.prices) : new Map<string, Map<Cycle, number>>();
  const waiters = new Map<string, Set<() => void>>();
  const wake = (paymentHash: string) => [...(waiters.get(paymentHash) ?? [])].forEach((done) => done());
  const credit = createCredit({
    db: deps.db,
    ledger: deps.ledger,
    log: deps.log,
    metrics: deps.metrics,
    nowMs,
    onSettled: wake,
  });
  const lookups = deps.wallet && createLookups({ ...deps, wallet: deps.wallet, credit, nowMs, pollMs: s.pollMs });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopNotifications: (() => void) | undefined;
  let closing = false;

  function wallet(): LightningWallet {
    if (!deps.wallet) throw notConfigured('NWC_URL', 'Lightning');
    return deps.wallet;
  }

  /** A 502 for the route; counted, and logged without anything of the connection. */
  function walletFailed(user: string, plan: string, kind: 'unavailable' | 'rejected', why: string): BillingError {
    deps.metrics?.lightningInvoices.inc({ outcome: 'wallet_error' });
    deps.metrics?.billingProviderErrors.inc({ provider: LIGHTNING_PROVIDER, operation: 'make_invoice', kind });
    log.warn({ userId: user, plan, kind, why }, 'the Lightning wallet could not make an invoice');
    const what =
      kind === 'rejected'
        ? `the Lightning wallet refused to make the invoice (${why})`
        : `the Lightning wallet could not be reached (${why})`;
    return new BillingError('provider_unavailable', `${what}; nothing was stored, try again later`);
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
    return credit.settle(inv, tx, 'notification');
  }

  const checkDue = async (asOf = new Date(nowMs())) => (lookups ? lookups.checkDue(asOf) : 0);
  const applyPeriods = (asOf = new Date(nowMs())) => credit.applyPeriods(asOf);

  return {
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
      if (!made.ok) throw walletFailed(user.id, plan, made.kind, made.reason);
      const tx = made.value;
      if (tx.amountMsats !== sats * 1000 || !tx.invoice.toLowerCase().startsWith('ln'))
        throw walletFailed(user.id, plan, 'rejected', 'it answered an invoice for another amount');
      const now = nowMs();
      const expiresAt = new Date(tx.expiresAt ? tx.expiresAt * 1000 : now + s.expirySeconds * 1000);
      const row = {
        paymentHash: tx.paymentHash,
        userId: user.id,
        planCode: plan,
        billingCycle: cycle as Cycle,
        amountSats: sats,
        bolt11: tx.invoice,
        expiresAt,
        nextCheckAt: new Date(now + s.pollMs),
      };
      const invoice: LightningInvoice = {
        ...row,
        createdAt: new Date(now),
        state: 'pending',
        checks: 0,
        settledAt: null,
        periodStart: null,
        periodEnd: null,
        subscriptionKey: null,
      };
      await deps.ledger.record(
        user.id,
        { payments: [lightningPayment(invoice, 'pending')] },
        { actor: 'user', prepare: (trx) => insertInvoice(trx, row) },
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
          waiters.set(paymentHash, set.add(done));
        });
      }
    },
    paymentReceived,
    checkDue,
    applyPeriods,
    refresh: async (userId) => lookups?.refresh(userId),
    start() {
      if (timer) return;
      stopNotifications = deps.wallet?.onPaymentReceived((tx) => {
        if (!isPaid(tx) && tx.state !== undefined) return;
        paymentReceived(tx).catch((err: unknown) =>
          log.error(
            { err, paymentHash: tx.paymentHash },
            'a Lightning payment could not be credited; the lookups will find it',
          ),
        );
      });
      // Without a wallet the periods already bought still end (and start) on time; nothing is looked up.
      const tick = async () => {
        await applyPeriods();
        await checkDue();
      };
      timer = setInterval(
        () => {
          running ??= tick()
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
