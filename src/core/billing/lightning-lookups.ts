// The fallback that always runs: pending Lightning invoices are looked up at the wallet (lookup_invoice) with backoff
// until they expire, and a few times after (late payments), whatever the notifications did. Processes share the work:
// an invoice due is claimed (FOR UPDATE SKIP LOCKED) before it is looked up. A wallet that does not answer changes
// nothing: the invoice stays pending, even past its expiry, and is looked up again until the wallet answers.
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import {
  checkableInvoicesOfUser,
  claimDueInvoices,
  scheduleCheck,
  type LightningInvoice,
} from '../../store/lightning-invoices.js';
import type { Metrics } from '../ops/index.js';
import { LIGHTNING_PROVIDER, type Credit } from './lightning-credit.js';
import { lateLookup, nextLookup } from './lightning-periods.js';
import type { LightningWallet, WalletInvoice } from './nwc-wallet.js';

/** How long a claimed invoice is left to the process that claimed it. */
const LEASE_MS = 2 * 60_000;
const BATCH = 50;

export interface LookupDeps {
  readonly db: Knex;
  readonly wallet: LightningWallet;
  readonly credit: Credit;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'billingProviderErrors'> | undefined;
  readonly nowMs: () => number;
  readonly pollMs: number;
}

export interface Lookups {
  /** Looks up the invoices due at `asOf`; returns how many were looked up. */
  checkDue(asOf: Date): Promise<number>;
  /** Looks up the user's open invoices now; undefined when they have none. */
  refresh(userId: string): Promise<'applied' | 'unavailable' | undefined>;
}

/** Whether the wallet says the invoice is paid (a wallet that gives no state but a settlement time: paid). */
export const isPaid = (tx: WalletInvoice) =>
  tx.state === 'settled' || (tx.state === undefined && tx.settledAt !== undefined);

export function createLookups(deps: LookupDeps): Lookups {
  const log = deps.log.child({ mod: 'lightning' });
  const again = (inv: LightningInvoice, now: number) =>
    scheduleCheck(deps.db, inv.paymentHash, nextLookup(inv.checks, inv.expiresAt, now, deps.pollMs));

  /** One lookup_invoice and what follows from the answer. */
  async function lookUp(inv: LightningInvoice): Promise<'applied' | 'unavailable'> {
    const answer = await deps.wallet.lookupInvoice(inv.paymentHash);
    const now = deps.nowMs();
    const expired = now >= inv.expiresAt.getTime();
    if (!answer.ok && !(answer.kind === 'rejected' && answer.code === 'NOT_FOUND' && expired)) {
      deps.metrics?.billingProviderErrors.inc({
        provider: LIGHTNING_PROVIDER,
        operation: 'lookup_invoice',
        kind: answer.kind,
      });
      log.warn(
        { paymentHash: inv.paymentHash, why: answer.reason, checks: inv.checks + 1 },
        'Lightning invoice lookup failed; asked again later',
      );
      await again(inv, now);
      return 'unavailable';
    }
    if (answer.ok && isPaid(answer.value)) {
      await deps.credit.settle(inv, answer.value, 'lookup');
      return 'applied';
    }
    const walletGaveUp = !answer.ok || answer.value.state === 'expired' || answer.value.state === 'failed';
    if (inv.state === 'pending' && (expired || walletGaveUp)) await deps.credit.expire(inv, now);
    else if (inv.state === 'pending') await again(inv, now);
    else await scheduleCheck(deps.db, inv.paymentHash, lateLookup(inv.expiresAt, now));
    return 'applied';
  }

  async function guardedLookUp(inv: LightningInvoice): Promise<'applied' | 'unavailable'> {
    try {
      return await lookUp(inv);
    } catch (err) {
      log.error({ err, paymentHash: inv.paymentHash }, 'Lightning invoice lookup could not be applied');
      await again(inv, deps.nowMs()).catch(() => undefined);
      return 'unavailable';
    }
  }

  return {
    async checkDue(asOf) {
      let n = 0;
      for (;;) {
        const batch = await claimDueInvoices(deps.db, asOf, new Date(asOf.getTime() + LEASE_MS), BATCH);
        for (const inv of batch) await guardedLookUp(inv);
        n += batch.length;
        if (batch.length < BATCH) return n;
      }
    },
    async refresh(userId) {
      const open = await checkableInvoicesOfUser(deps.db, userId);
      if (open.length === 0) return undefined;
      const outcomes = await Promise.all(open.map(guardedLookUp));
      return outcomes.includes('unavailable') ? 'unavailable' : 'applied';
    },
  };
}
