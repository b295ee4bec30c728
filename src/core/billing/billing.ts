// Billing, assembled from the configuration: the ledger (the one place facts are applied), ExtensionPay, Stripe and
// Lightning (NWC). Built once by the composition root; the API's routes and the scheduled jobs use the same object.
import type { Knex } from 'knex';
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import { listAccountsOfUser, type BillingAccount } from '../../store/billing-accounts.js';
import type { CacheInvalidation } from '../accounts/index.js';
import type { Metrics } from '../ops/index.js';
import type { Plans } from '../quota/index.js';
import { createExtPayClient, extPayPlanMap } from './extensionpay.js';
import { createExtensionPay, type ExtensionPay, type SyncOutcome } from './extensionpay-sync.js';
import { createBillingLedger, type BillingLedger } from './ledger.js';
import { createLightning, type Lightning } from './lightning.js';
import { createNwcWallet } from './nwc-wallet.js';
import { createSecretBox } from './secret-box.js';
import { createStripeBilling, type StripeBilling } from './stripe.js';

type BillingConfig = Pick<
  Config,
  | 'dataEncryptionKey'
  | 'extensionpayUrl'
  | 'extensionpayExtensionId'
  | 'extensionpayPlans'
  | 'extensionpaySyncHours'
  | 'extensionpaySyncConcurrency'
  | 'billingProviderTimeoutMs'
  | 'stripeSecretKey'
  | 'stripeWebhookSecret'
  | 'stripePrices'
  | 'stripeApiBase'
  | 'stripeSuccessUrl'
  | 'stripeCancelUrl'
  | 'stripePortalReturnUrl'
  | 'nwcUrl'
  | 'lightningPrices'
  | 'lightningInvoiceExpirySeconds'
  | 'lightningPollMs'
  | 'relayName'
>;

export interface BillingDeps {
  readonly config: BillingConfig;
  /** PUBLIC_URL, read when needed: with PORT=0 it is known only once the server listens. */
  readonly publicUrl: () => string;
  readonly db: Knex;
  readonly plans: Plans;
  readonly invalidation: CacheInvalidation;
  readonly log: Logger;
  readonly metrics?:
    Pick<Metrics, 'billingProviderErrors' | 'billingSyncs' | 'billingWebhooks' | 'lightningInvoices'> | undefined;
}

type ProviderName = 'stripe' | 'extensionpay' | 'lightning';

export interface Billing {
  readonly ledger: BillingLedger;
  readonly extensionpay: ExtensionPay;
  readonly stripe: StripeBilling;
  readonly lightning: Lightning;
  /** The providers that can sell the plan here (GET /v1/plans). */
  providersFor(planCode: string): ProviderName[];
  /** The user's linked provider accounts (no credential in them). */
  accounts(userId: string): Promise<BillingAccount[]>;
  /** Re-reads every provider the user is linked to; what each one answered. */
  refresh(userId: string): Promise<{ provider: ProviderName; outcome: SyncOutcome }[]>;
  close(): Promise<void>;
}

export function createBilling(deps: BillingDeps): Billing {
  const c = deps.config;
  const ledger = createBillingLedger({ db: deps.db, plans: deps.plans, invalidation: deps.invalidation });
  const planFor = extPayPlanMap(c.extensionpayPlans);
  const extPayPlans = new Set(c.extensionpayPlans.map((e) => e.slice(e.lastIndexOf('=') + 1).trim()));
  const extensionpay = createExtensionPay({
    db: deps.db,
    ledger,
    log: deps.log,
    metrics: deps.metrics,
    box: c.dataEncryptionKey ? createSecretBox(c.dataEncryptionKey) : undefined,
    client: c.extensionpayExtensionId
      ? createExtPayClient({
          baseUrl: c.extensionpayUrl,
          extensionId: c.extensionpayExtensionId,
          timeoutMs: c.billingProviderTimeoutMs,
        })
      : undefined,
    planFor,
    syncHours: c.extensionpaySyncHours,
    concurrency: c.extensionpaySyncConcurrency,
  });
  const app = () => `${deps.publicUrl()}/app/`;
  const stripe = createStripeBilling({
    db: deps.db,
    ledger,
    log: deps.log,
    metrics: deps.metrics,
    settings: {
      secretKey: c.stripeSecretKey,
      webhookSecret: c.stripeWebhookSecret,
      prices: c.stripePrices,
      apiBase: c.stripeApiBase,
      timeoutMs: c.billingProviderTimeoutMs,
      returnUrls: () => ({
        success: c.stripeSuccessUrl || `${app()}?checkout=success`,
        cancel: c.stripeCancelUrl || `${app()}?checkout=canceled`,
        portal: c.stripePortalReturnUrl || app(),
      }),
    },
  });

  const lightning = createLightning({
    db: deps.db,
    ledger,
    plans: deps.plans,
    log: deps.log,
    metrics: deps.metrics,
    wallet: c.nwcUrl
      ? createNwcWallet({ url: c.nwcUrl, timeoutMs: c.billingProviderTimeoutMs, log: deps.log })
      : undefined,
    settings: {
      prices: c.lightningPrices,
      expirySeconds: c.lightningInvoiceExpirySeconds,
      pollMs: c.lightningPollMs,
      serviceName: c.relayName,
    },
  });

  return {
    ledger,
    extensionpay,
    stripe,
    lightning,
    providersFor(planCode) {
      const out: ProviderName[] = [];
      if ((stripe.sellable.get(planCode)?.length ?? 0) > 0) out.push('stripe');
      if (!extensionpay.missingSetting() && extPayPlans.has(planCode)) out.push('extensionpay');
      if ((lightning.prices.get(planCode)?.size ?? 0) > 0) out.push('lightning');
      return out;
    },
    accounts: (userId) => listAccountsOfUser(deps.db, userId),
    async refresh(userId) {
      const [ext, str, ln] = await Promise.all([
        extensionpay.refresh(userId),
        stripe.refresh(userId),
        lightning.refresh(userId),
      ]);
      const out: { provider: ProviderName; outcome: SyncOutcome }[] = [];
      if (ext) out.push({ provider: 'extensionpay', outcome: ext });
      if (str) out.push({ provider: 'stripe', outcome: str });
      if (ln) out.push({ provider: 'lightning', outcome: ln });
      return out;
    },
    async close() {
      await Promise.all([extensionpay.stop(), lightning.stop()]);
    },
  };
}
