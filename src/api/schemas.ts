// JSON schemas shared by several routes, registered once (`addSchema`) and referenced as `{ $ref: 'Name#' }`.
// They become `components.schemas` of the OpenAPI document. A route's own body, query and params schemas sit
// beside its handler. Response schemas also decide what is serialised: a field not declared here never leaves.
import { errorBodySchema } from './errors.js';

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
const nullableString = { type: ['string', 'null'] } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;
export const hex64 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
export const uuid = { type: 'string', format: 'uuid' } as const;
/** A decimal amount as a string, exactly as stored ("4.99"). */
const money = { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]+)?$' } as const;

export const nostrEventSchema = {
  $id: 'NostrEvent',
  type: 'object',
  description: 'A signed Nostr event (NIP-01)',
  required: ['id', 'pubkey', 'created_at', 'kind', 'tags', 'content', 'sig'],
  additionalProperties: false,
  properties: {
    id: hex64,
    pubkey: hex64,
    created_at: { type: 'integer', minimum: 0 },
    kind: { type: 'integer', minimum: 0, maximum: 65535 },
    tags: { type: 'array', items: { type: 'array', items: { type: 'string' } } },
    content: { type: 'string' },
    sig: { type: 'string', pattern: '^[0-9a-f]{128}$' },
  },
} as const;

export const planSchema = {
  $id: 'Plan',
  type: 'object',
  required: ['code', 'name', 'price_monthly', 'currency', 'daily_post_limit', 'custom_relays_allowed', 'analytics_enabled'],
  properties: {
    code: { type: 'string' },
    name: { type: 'string' },
    description: nullableString,
    price_monthly: money,
    price_yearly: { type: ['string', 'null'] },
    currency: { type: 'string' },
    daily_post_limit: { type: 'integer', description: '-1 is unlimited' },
    monthly_post_limit: { type: ['integer', 'null'], description: '-1 or null is unlimited' },
    custom_relays_allowed: { type: 'boolean' },
    max_custom_relays: { type: ['integer', 'null'], description: 'How many relays of their own a user may keep; null when the plan allows none' },
    analytics_enabled: { type: 'boolean' },
    priority_support: { type: 'boolean' },
    multiple_identities: { type: 'boolean' },
    providers: {
      type: 'array',
      items: { type: 'string', enum: ['stripe', 'extensionpay', 'lightning'] },
      description:
        'How this plan can be bought here (GET /v1/plans): stripe (POST /v1/subscription/checkout), extensionpay (in the extension, then POST /v1/subscription/extensionpay), lightning (POST /v1/subscription/lightning, paid in sats)',
    },
    checkout_cycles: { type: 'array', items: { type: 'string', enum: ['monthly', 'yearly'] }, description: 'The billing cycles Stripe Checkout sells this plan for' },
    lightning_prices: {
      type: 'object',
      properties: { monthly: { type: 'integer' }, yearly: { type: 'integer' } },
      description: 'Price in sats of one period bought with a Lightning invoice, per billing cycle (a period does not renew)',
    },
  },
} as const;

export const sessionSchema = {
  $id: 'Session',
  type: 'object',
  required: ['id', 'created_at', 'expires_at', 'last_used_at', 'current'],
  properties: {
    id: uuid,
    extension_id: { type: 'string' },
    extension_version: nullableString,
    browser_name: nullableString,
    browser_version: nullableString,
    os: nullableString,
    ip_address: nullableString,
    created_at: dateTime,
    expires_at: dateTime,
    last_used_at: dateTime,
    current: { type: 'boolean', description: 'true for the session this request was made with' },
  },
} as const;

export const relayOutcomeSchema = {
  $id: 'RelayOutcome',
  type: 'object',
  description: 'One upstream relay: the forwarding of one event to it, with its timings',
  required: ['relay_url', 'status', 'attempts'],
  properties: {
    relay_url: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'connecting', 'connected', 'publishing', 'published', 'failed', 'timeout', 'rejected'] },
    attempts: { type: 'integer' },
    attempted_at: nullableDateTime,
    completed_at: nullableDateTime,
    next_attempt_at: nullableDateTime,
    connection_time_ms: nullableInteger,
    publish_time_ms: nullableInteger,
    total_time_ms: nullableInteger,
    relay_response: { description: "The relay's answer as received (e.g. the OK message)" },
    error_code: nullableString,
    error_message: nullableString,
  },
} as const;

export const eventRecordSchema = {
  $id: 'EventRecord',
  type: 'object',
  description: 'An event the user published, with its forwarding state',
  required: ['id', 'kind', 'created_at', 'status', 'received_at', 'event', 'relays'],
  properties: {
    id: hex64,
    kind: { type: 'integer' },
    created_at: { type: 'integer', description: 'The event created_at (unix seconds)' },
    status: {
      type: 'string',
      enum: ['pending', 'signing', 'publishing', 'published', 'failed', 'partial', 'not_forwarded'],
      description: '`not_forwarded`: stored on this relay and sent to no upstream relay (`failure_reason` says why)',
    },
    received_at: dateTime,
    published_at: nullableDateTime,
    failure_reason: nullableString,
    total_relays: { type: 'integer' },
    successful_relays: { type: 'integer' },
    failed_relays: { type: 'integer' },
    publish_duration_ms: nullableInteger,
    removed_at: nullableDateTime,
    removed_reason: nullableString,
    source: {
      type: 'object',
      properties: {
        platform: nullableString,
        tweet_id: nullableString,
        tweet_url: nullableString,
        tweet_text: nullableString,
        username: nullableString,
      },
    },
    event: { $ref: 'NostrEvent#' },
    relays: { type: 'array', items: { $ref: 'RelayOutcome#' } },
  },
} as const;

export const quotaPeriodSchema = {
  $id: 'QuotaPeriod',
  type: 'object',
  required: ['limit', 'used', 'remaining', 'resets_at'],
  properties: {
    limit: { type: 'integer', description: 'Posts allowed in the period; -1 is unlimited' },
    used: { type: 'integer', description: 'Posts counted in the period so far' },
    remaining: { type: 'integer', description: '-1 when unlimited' },
    resets_at: { type: 'string', format: 'date-time', description: 'Midnight in your timezone (daily), or the first of next month (monthly)' },
  },
} as const;

export const profileSchema = {
  $id: 'Profile',
  type: 'object',
  required: ['id', 'pubkey', 'status', 'plan', 'created_at', 'timezone', 'locale'],
  properties: {
    id: uuid,
    pubkey: hex64,
    status: { type: 'string', enum: ['active', 'suspended', 'deleted', 'pending_verification'] },
    plan: { type: 'string', description: 'Code of the effective plan' },
    display_name: nullableString,
    email: nullableString,
    email_verified: { type: 'boolean' },
    avatar_url: nullableString,
    timezone: { type: 'string' },
    locale: { type: 'string' },
    data_retention_days: { type: 'integer' },
    analytics_enabled: { type: 'boolean' },
    marketing_emails: { type: 'boolean' },
    created_at: dateTime,
    last_active_at: dateTime,
  },
} as const;

export const subscriptionSchema = {
  $id: 'Subscription',
  type: 'object',
  required: ['id', 'plan', 'status', 'billing_cycle', 'amount', 'currency', 'started_at'],
  properties: {
    id: uuid,
    plan: { type: 'string' },
    status: { type: 'string', enum: ['active', 'past_due', 'canceled', 'unpaid', 'incomplete', 'trialing'] },
    billing_cycle: { type: 'string', enum: ['monthly', 'yearly', 'lifetime'] },
    amount: money,
    currency: { type: 'string' },
    started_at: dateTime,
    current_period_start: nullableDateTime,
    current_period_end: nullableDateTime,
    ends_at: nullableDateTime,
    canceled_at: nullableDateTime,
    payment_provider: { type: 'string' },
    renews: { type: 'boolean', description: 'true when it renews at current_period_end' },
    cancel_at: { ...nullableDateTime, description: 'When it ends without renewing (canceled at period end); null when it renews or has ended' },
  },
} as const;

export const paymentSchema = {
  $id: 'Payment',
  type: 'object',
  required: ['id', 'amount', 'currency', 'status', 'created_at'],
  properties: {
    id: uuid,
    amount: money,
    currency: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'processing', 'succeeded', 'failed', 'canceled', 'refunded'] },
    payment_provider: { type: 'string' },
    payment_method: nullableString,
    last_four_digits: nullableString,
    created_at: dateTime,
    processed_at: nullableDateTime,
    failed_at: nullableDateTime,
    failure_reason: nullableString,
    invoice_url: nullableString,
    receipt_url: nullableString,
  },
} as const;

export const sharedSchemas = [
  errorBodySchema,
  nostrEventSchema,
  planSchema,
  sessionSchema,
  relayOutcomeSchema,
  eventRecordSchema,
  quotaPeriodSchema,
  profileSchema,
  subscriptionSchema,
  paymentSchema,
] as const;

/** `?limit` and `?cursor` of the list routes (keyset pagination: pass back `next_cursor` for the next page). */
export const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
  cursor: { type: 'string', maxLength: 200 },
} as const;
