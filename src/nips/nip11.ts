/** NIP-11 relay information document, served on GET with `Accept: application/nostr+json`. */

interface RelayLimitation {
  max_message_length: number;
  max_subscriptions: number;
  max_limit: number;
  max_subid_length: number;
  max_event_tags: number;
  max_content_length: number;
  auth_required: boolean;
  payment_required: boolean;
  restricted_writes: boolean;
  created_at_lower_limit: number;
  created_at_upper_limit: number;
  default_limit: number;
  /** Filters in one REQ or COUNT (NIP-11's earlier `max_filters`). */
  max_filters?: number;
  /** Values in one filter field (ids, authors, kinds, a tag): this relay's own limitation, named like the others. */
  max_filter_values?: number;
}

export interface SubscriptionFee {
  amount: number;
  /** 'msats' per NIP-11. */
  unit: string;
  /** Seconds, e.g. 2592000 for 30 days. */
  period: number;
  /** Extra fields a relay may add to an entry: which plan the fee buys, and that plan's post quota. */
  plan?: string;
  plan_name?: string;
  daily_post_limit?: number;
  monthly_post_limit?: number;
}

export interface RelayInfoDocument {
  name: string;
  description: string;
  pubkey?: string;
  contact?: string;
  supported_nips: number[];
  software: string;
  version: string;
  icon?: string;
  limitation: RelayLimitation;
  fees?: { subscription: SubscriptionFee[] };
  payments_url?: string;
}

/** Config-side input: camelCase, mapped one to one onto the document's snake_case fields. */
export interface RelayInfoInput {
  name: string;
  description: string;
  pubkey?: string;
  contact?: string;
  supportedNips: readonly number[];
  software: string;
  version: string;
  icon?: string;
  limitation: {
    maxMessageLength: number;
    maxSubscriptions: number;
    maxLimit: number;
    maxSubIdLength: number;
    maxEventTags: number;
    maxContentLength: number;
    authRequired: boolean;
    paymentRequired: boolean;
    restrictedWrites: boolean;
    /** Seconds before now (NIP-11 `created_at_lower_limit`). */
    createdAtLowerLimit: number;
    /** Seconds after now (NIP-11 `created_at_upper_limit`). */
    createdAtUpperLimit: number;
    defaultLimit: number;
    maxFilters?: number;
    maxFilterValues?: number;
  };
  subscriptionFees?: readonly SubscriptionFee[];
  paymentsUrl?: string;
}

/**
 * Maps the input onto the document. Optional fields are left out when absent (not null);
 * supported_nips is sorted and deduplicated; fees appear only with at least one entry.
 */
export function buildInfoDocument(input: RelayInfoInput): RelayInfoDocument {
  const l = input.limitation;
  const doc: RelayInfoDocument = {
    name: input.name,
    description: input.description,
    supported_nips: [...new Set(input.supportedNips)].sort((a, b) => a - b),
    software: input.software,
    version: input.version,
    limitation: {
      max_message_length: l.maxMessageLength,
      max_subscriptions: l.maxSubscriptions,
      max_limit: l.maxLimit,
      max_subid_length: l.maxSubIdLength,
      max_event_tags: l.maxEventTags,
      max_content_length: l.maxContentLength,
      auth_required: l.authRequired,
      payment_required: l.paymentRequired,
      restricted_writes: l.restrictedWrites,
      created_at_lower_limit: l.createdAtLowerLimit,
      created_at_upper_limit: l.createdAtUpperLimit,
      default_limit: l.defaultLimit,
      ...(l.maxFilters !== undefined ? { max_filters: l.maxFilters } : {}),
      ...(l.maxFilterValues !== undefined ? { max_filter_values: l.maxFilterValues } : {}),
    },
  };
  if (input.pubkey !== undefined) doc.pubkey = input.pubkey;
  if (input.contact !== undefined) doc.contact = input.contact;
  if (input.icon !== undefined) doc.icon = input.icon;
  if (input.subscriptionFees !== undefined && input.subscriptionFees.length > 0) {
    doc.fees = { subscription: input.subscriptionFees.map((f) => ({ ...f })) };
  }
  if (input.paymentsUrl !== undefined) doc.payments_url = input.paymentsUrl;
  return doc;
}

/** NIP-11 MUST send CORS headers; the same URI also serves NIP-86 POSTs with NIP-98 auth. */
export const corsHeaders: Readonly<Record<string, string>> = Object.freeze({
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Accept, Authorization, Content-Type',
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
});

export const contentType = 'application/nostr+json';
