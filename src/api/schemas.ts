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
/** Every success rate the API gives: a percentage, or null when there is nothing to rate. */
export const successRate = { type: ['number', 'null'], description: 'percent, 0–100 (null: nothing to rate)' } as const;
/** A decimal amount as a string, exactly as stored ("4.99"). */
const money = { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]+)?$' } as const;

const nostrEventSchema = {
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

const planSchema = {
  $id: 'Plan',
  type: 'object',
  required: [
    'code',
    'name',
    'price_monthly',
    'currency',
    'daily_post_limit',
    'custom_relays_allowed',
    'analytics_enabled',
  ],
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
    max_custom_relays: {
      type: ['integer', 'null'],
      description: 'How many relays of their own a user may keep; null when the plan allows none',
    },
    analytics_enabled: { type: 'boolean' },
    priority_support: { type: 'boolean' },
    multiple_identities: { type: 'boolean' },
    providers: {
      type: 'array',
      items: { type: 'string', enum: ['stripe', 'extensionpay', 'lightning'] },
      description:
        'How this plan can be bought here (GET /v1/plans): stripe (POST /v1/subscription/checkout), extensionpay (in the extension, then POST /v1/subscription/extensionpay), lightning (POST /v1/subscription/lightning, paid in sats)',
    },
    checkout_cycles: {
      type: 'array',
      items: { type: 'string', enum: ['monthly', 'yearly'] },
      description: 'The billing cycles Stripe Checkout sells this plan for',
    },
    lightning_prices: {
      type: 'object',
      properties: { monthly: { type: 'integer' }, yearly: { type: 'integer' } },
      description:
        'Price in sats of one period bought with a Lightning invoice, per billing cycle (a period does not renew)',
    },
  },
} as const;

const sessionSchema = {
  $id: 'Session',
  type: 'object',
  required: ['id', 'created_at', 'expires_at', 'last_used_at', 'current'],
  properties: {
    id: uuid,
    pubkey: { ...hex64, description: 'The key the session acts as (the one that signed POST /v1/sessions)' },
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

const relayOutcomeSchema = {
  $id: 'RelayOutcome',
  type: 'object',
  description: 'One upstream relay: the forwarding of one event to it, with its timings',
  required: ['relay_url', 'status', 'attempts'],
  properties: {
    relay_url: { type: 'string' },
    status: {
      type: 'string',
      enum: ['pending', 'connecting', 'connected', 'publishing', 'published', 'failed', 'timeout', 'rejected'],
    },
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

const eventRecordSchema = {
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

const quotaPeriodSchema = {
  $id: 'QuotaPeriod',
  type: 'object',
  required: ['limit', 'used', 'remaining', 'resets_at'],
  properties: {
    limit: { type: 'integer', description: 'Posts allowed in the period; -1 is unlimited' },
    used: { type: 'integer', description: 'Posts counted in the period so far' },
    remaining: { type: 'integer', description: '-1 when unlimited' },
    resets_at: {
      type: 'string',
      format: 'date-time',
      description: 'Midnight in your timezone (daily), or the first of next month (monthly)',
    },
  },
} as const;

const profileSchema = {
  $id: 'Profile',
  type: 'object',
  required: ['id', 'pubkey', 'status', 'plan', 'created_at', 'timezone', 'locale'],
  properties: {
    id: uuid,
    pubkey: { ...hex64, description: "The account's primary key" },
    signed_in_pubkey: {
      ...hex64,
      description:
        'The key this request acts as: the primary key or a key linked to the account (GET /v1/me/identities)',
    },
    status: { type: 'string', enum: ['active', 'suspended', 'deleted', 'pending_verification'] },
    plan: { type: 'string', description: 'Code of the effective plan' },
    admin: {
      type: 'boolean',
      description: 'Your pubkey is one of ADMIN_PUBKEYS (the admin routes and NIP-86 take your NIP-98 signature)',
    },
    display_name: nullableString,
    email: nullableString,
    email_verified: {
      type: 'boolean',
      description:
        'true once the link emailed to this address was opened; payment receipts go to verified addresses only',
    },
    email_verification_available: {
      type: 'boolean',
      description: 'false when this server sends no email (SMTP_URL unset): an address is then stored unverified',
    },
    email_verification: {
      type: 'object',
      description: 'Only in the answer to a PATCH that set `email`: what became of the verification email',
      required: ['status', 'message'],
      properties: {
        status: {
          type: 'string',
          enum: ['sent', 'already_verified', 'not_configured', 'rate_limited', 'send_failed', 'not_applicable'],
        },
        message: { type: 'string' },
        retry_after_seconds: { type: 'integer' },
      },
    },
    avatar_url: nullableString,
    timezone: { type: 'string' },
    locale: { type: 'string' },
    data_retention_days: {
      type: 'integer',
      description: 'Days your activity is kept (0 = kept until you erase your account); see data_retention',
    },
    data_retention: { $ref: 'DataRetention#' },
    analytics_enabled: { type: 'boolean' },
    marketing_emails: { type: 'boolean' },
    created_at: dateTime,
    last_active_at: dateTime,
  },
} as const;

const subscriptionSchema = {
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
    cancel_at: {
      ...nullableDateTime,
      description: 'When it ends without renewing (canceled at period end); null when it renews or has ended',
    },
  },
} as const;

const paymentSchema = {
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

const retentionEntry = {
  type: 'object',
  required: ['table', 'what'],
  properties: { table: { type: 'string' }, what: { type: 'string' } },
} as const;

const dataRetentionSchema = {
  $id: 'DataRetention',
  type: 'object',
  description: 'Your retention period and what it applies to: checked hourly, a batch at a time',
  required: ['days', 'summary', 'erased', 'kept'],
  properties: {
    days: { type: 'integer', description: '0 = nothing is erased by age' },
    summary: { type: 'string' },
    erased: { type: 'array', items: retentionEntry, description: 'What is erased once older than `days`' },
    kept: { type: 'array', items: retentionEntry, description: 'What the retention period does not touch, and why' },
  },
} as const;

const identitySchema = {
  $id: 'Identity',
  type: 'object',
  description: 'A Nostr key of the account',
  required: ['pubkey', 'primary', 'label', 'linked_at', 'can_post'],
  properties: {
    pubkey: hex64,
    primary: {
      type: 'boolean',
      description: "true for the account's primary key (the one it was created with); it cannot be unlinked",
    },
    label: nullableString,
    linked_at: {
      ...dateTime,
      description: 'When the key was linked (for the primary key: when the account was created)',
    },
    can_post: {
      type: 'boolean',
      description:
        'false for a linked key while the plan does not include multiple identities (its posts are refused with restricted:)',
    },
  },
} as const;

export const sharedSchemas = [
  dataRetentionSchema,
  identitySchema,
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

/** A plan and its billing cycle, as the buyer picks them (Stripe Checkout, a Lightning invoice). */
export const planPurchaseBody = {
  type: 'object',
  required: ['plan', 'billing_cycle'],
  additionalProperties: false,
  properties: {
    plan: { type: 'string', minLength: 1, maxLength: 50 },
    billing_cycle: { type: 'string', enum: ['monthly', 'yearly'] },
  },
} as const;

export interface PlanPurchase {
  plan: string;
  billing_cycle: string;
}
