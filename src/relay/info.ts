// NIP-11: the relay information document, built from the configuration (the limits this relay enforces, the
// very values it enforces) and from the plans table (fees.subscription), with the Lightning prices in msats.
import type { Config } from '../config.js';
import { lightningPrices } from '../core/billing/index.js';
import type { PlanRecord } from '../core/quota/index.js';
import * as nip11 from '../nips/nip11.js';

const supportedNips = [1, 9, 11, 40, 42, 45, 65, 70, 86, 98];

/** The NIPs this relay serves with this configuration: 77 only when negentropy is on. */
function supportedNipsOf(config: Pick<Config, 'nip77Enabled'>): number[] {
  return config.nip77Enabled ? [...supportedNips, 77] : supportedNips;
}
const THIRTY_DAYS = 30 * 24 * 3600;
const ONE_YEAR = 365 * 24 * 3600;

/**
 * Each public plan's monthly price, and its yearly price where it has one (Stripe sells both: core/billing/), then
 * its prices in sats when Lightning sells it (a period bought with an invoice, in msats as NIP-11 counts); each entry
 * names its plan and that plan's post quota (-1: unlimited, as the plans table says it).
 */
function subscriptionFees(
  offered: readonly PlanRecord[],
  sats: ReadonlyMap<string, ReadonlyMap<string, number>>,
): nip11.SubscriptionFee[] {
  return offered.flatMap((p) => {
    const plan = {
      plan: p.code,
      plan_name: p.name,
      daily_post_limit: p.dailyPostLimit,
      ...(p.monthlyPostLimit !== null ? { monthly_post_limit: p.monthlyPostLimit } : {}),
    };
    const lightning = [...(sats.get(p.code) ?? [])].map(([cycle, amount]) => ({
      amount: amount * 1000,
      unit: 'msats',
      period: cycle === 'yearly' ? ONE_YEAR : THIRTY_DAYS,
      ...plan,
    }));
    return [
      { amount: Number(p.priceMonthly), unit: p.currency, period: THIRTY_DAYS, ...plan },
      ...(p.priceYearly !== null
        ? [{ amount: Number(p.priceYearly), unit: p.currency, period: ONE_YEAR, ...plan }]
        : []),
      ...lightning,
    ];
  });
}

export function relayInfo(config: Config, plans: readonly PlanRecord[], version: string): nip11.RelayInfoDocument {
  const offered = plans.filter((p) => p.isActive && p.isPublic);
  return nip11.buildInfoDocument({
    name: config.relayName,
    description: config.relayDescription,
    ...(config.relayPubkey ? { pubkey: config.relayPubkey } : {}),
    ...(config.relayContact ? { contact: config.relayContact } : {}),
    supportedNips: supportedNipsOf(config),
    software: config.relaySoftware,
    version,
    limitation: {
      maxMessageLength: config.maxMessageBytes,
      maxSubscriptions: config.maxSubscriptions,
      maxLimit: config.maxLimit,
      maxSubIdLength: config.maxSubIdLength,
      maxEventTags: config.maxEventTags,
      maxContentLength: config.maxContentLength,
      authRequired: config.authRequiredForWrite,
      paymentRequired: false,
      restrictedWrites: true,
      createdAtLowerLimit: config.createdAtPastSeconds,
      createdAtUpperLimit: config.createdAtFutureSeconds,
      defaultLimit: config.defaultLimit,
      maxFilters: config.maxFilters,
      maxFilterValues: config.maxFilterValues,
    },
    subscriptionFees: subscriptionFees(offered, config.nwcUrl ? lightningPrices(config.lightningPrices) : new Map()),
    paymentsUrl: `${config.publicUrl}/v1/plans`,
  });
}
