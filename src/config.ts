// Configuration: every key is declared once here with its default and description, parsed and validated at
// start. A bad value stops the process with a message naming the key; nothing reads process.env elsewhere.
import { availableParallelism } from 'node:os';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Parser<T> = (raw: string, key: string) => T;

interface KeySpec<T> {
  readonly env: string;
  readonly default: T;
  readonly parse: Parser<T>;
  readonly description: string;
}

const str: Parser<string> = (raw) => raw;

const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> =>
  (raw, key) => {
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(`${key} must be an integer between ${min} and ${max}, got "${raw}"`);
    }
    return n;
  };

const bool: Parser<boolean> = (raw, key) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new ConfigError(`${key} must be true or false, got "${raw}"`);
};

const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const hexKeys: Parser<string[]> = (raw, key) => {
  const keys = list(raw, key);
  for (const k of keys) {
    if (!/^[0-9a-f]{64}$/.test(k)) throw new ConfigError(`${key} must list 64-char lowercase hex pubkeys, got "${k}"`);
  }
  return keys;
};

const origins: Parser<string[]> = (raw, key) => {
  if (raw.trim().toLowerCase() === 'none') return [];
  const entries = list(raw, key);
  for (const o of entries) {
    if (o !== '*' && !/^[a-z][a-z0-9+.-]*:\/\/[^/\s?#]+$/i.test(o)) {
      throw new ConfigError(
        `${key} must list origins like https://example.com or chrome-extension://<id> (no path), or *, got "${o}"`,
      );
    }
  }
  return entries;
};

const wsUrls: Parser<string[]> = (raw, key) => {
  const urls = list(raw, key);
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new ConfigError(`${key} has an invalid URL "${u}"`);
    }
    if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
      throw new ConfigError(`${key} URLs must use ws:// or wss://, got "${u}"`);
    }
  }
  return urls;
};

const httpUrl: Parser<string> = (raw, key) => {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${key} must be an absolute http(s) URL, got "${raw}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(`${key} must use http:// or https://, got "${raw}"`);
  }
  // Kept without a trailing slash so that PUBLIC_URL + path is the absolute URL a client signs (NIP-98).
  return raw.replace(/\/+$/, '');
};

const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw, key) => {
    if (!(values as readonly string[]).includes(raw)) {
      throw new ConfigError(`${key} must be one of ${values.join(', ')}, got "${raw}"`);
    }
    return raw as T;
  };

const optionalHttpUrl: Parser<string> = (raw, key) => (raw.trim() === '' ? '' : httpUrl(raw, key));

const dataKey: Parser<string> = (raw, key) => {
  const text = raw.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(text)
    ? 32
    : /^[A-Za-z0-9+/]{43}=$/.test(text)
      ? Buffer.from(text, 'base64').length
      : 0;
  if (bytes !== 32)
    throw new ConfigError(`${key} must be 32 random bytes as 64 hex characters or base64 (openssl rand -hex 32)`);
  return text;
};

/** `name=value` pairs, each matching `pattern` (checked here so a typo stops the start, naming the key). */
const pairs =
  (pattern: RegExp, example: string): Parser<string[]> =>
  (raw, key) => {
    const entries = list(raw, key);
    for (const e of entries)
      if (!pattern.test(e)) throw new ConfigError(`${key} entries look like ${example}, got "${e}"`);
    return entries;
  };

const smtpUrl: Parser<string> = (raw, key) => {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${key} must be an smtp:// or smtps:// URL, got an invalid URL`);
  }
  // The URL may carry a password: the message names the scheme only.
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:')
    throw new ConfigError(`${key} must use smtp:// or smtps://, got ${parsed.protocol}//`);
  return raw;
};

/**
 * A Nostr Wallet Connect URI: nostr+walletconnect://<wallet pubkey>?relay=wss://…&secret=<hex>. It holds the secret
 * that spends the connection's rights, so an error about it never repeats the value.
 */
const nwcUri: Parser<string> = (raw, key) => {
  const text = raw.trim();
  const m = /^nostr\+walletconnect:\/\/([0-9a-f]{64})\?(.+)$/.exec(text);
  const params = new URLSearchParams(m?.[2] ?? '');
  const relays = params.getAll('relay');
  const secret = params.get('secret') ?? '';
  if (
    !m ||
    relays.length === 0 ||
    relays.some((r) => !/^wss?:\/\/\S+$/.test(r)) ||
    !/^([0-9a-f]{64}|nsec1[02-9ac-hj-np-z]+)$/.test(secret)
  ) {
    throw new ConfigError(
      `${key} must look like nostr+walletconnect://<wallet pubkey, hex>?relay=wss://…&secret=<64 hex> (the value is not shown: it holds a secret)`,
    );
  }
  return text;
};

const intList: Parser<number[]> = (raw, key) => list(raw, key).map((v) => int(0, 65535)(v, key));

const spec = {
  databaseUrl: {
    env: 'DATABASE_URL',
    default: '',
    parse: str,
    description: 'PostgreSQL URL; empty runs the embedded PGlite database under DATA_DIR',
  },
  dataDir: {
    env: 'DATA_DIR',
    default: './data',
    parse: str,
    description: 'Directory of the embedded database (used only without DATABASE_URL)',
  },
  dbPoolMax: {
    env: 'DB_POOL_MAX',
    default: 10,
    parse: int(1, 200),
    description: 'Largest PostgreSQL connection pool per process',
  },
  dbPoolMin: {
    env: 'DB_POOL_MIN',
    default: 2,
    parse: int(0, 200),
    description:
      'Connections each pool keeps open while idle, once made (at most DB_POOL_MAX): a post after a quiet spell then needs no new connection, with its cold caches; 0 closes them all after 30 s idle',
  },
  databaseReadUrl: {
    env: 'DATABASE_READ_URL',
    default: '',
    parse: str,
    description:
      "A streaming replica of DATABASE_URL (PostgreSQL only) that REQ/COUNT queries, reports and users' exports read from while it is well; writes, quotas, sessions and reads-after-write stay on the primary. Empty = none",
  },
  databaseReadCheckSeconds: {
    env: 'DATABASE_READ_CHECK_SECONDS',
    default: 5,
    parse: int(1, 3600),
    description:
      'How often the read replica is checked (state and lag); a replica that failed stays out of use at least this long, reads going to the primary meanwhile',
  },
  databaseReadMaxLagSeconds: {
    env: 'DATABASE_READ_MAX_LAG_SECONDS',
    default: 30,
    parse: int(0, 86400),
    description: 'Reads go to the primary while the replica is further behind than this (0 = no limit)',
  },
  dbConnectTimeoutMs: {
    env: 'DB_CONNECT_TIMEOUT_MS',
    default: 2000,
    parse: int(100, 600000),
    description: 'Time allowed to open a PostgreSQL connection (a host that does not answer is given up on after it)',
  },
  dbAcquireTimeoutMs: {
    env: 'DB_ACQUIRE_TIMEOUT_MS',
    default: 3000,
    parse: int(100, 600000),
    description:
      'Longest wait for a connection from the pool (while PostgreSQL is unreachable, queries fail after it instead of queueing)',
  },
  dbQueryTimeoutMs: {
    env: 'DB_QUERY_TIMEOUT_MS',
    default: 5000,
    parse: int(100, 3600000),
    description:
      "Longest a statement may run (PostgreSQL's statement_timeout); a connection that gets no answer at all 1 s later is taken as dead and replaced. Migrations at start have no limit",
  },
  usageEventsRetentionDays: {
    env: 'USAGE_EVENTS_RETENTION_DAYS',
    default: 90,
    parse: int(0, 36500),
    description:
      'Days of usage_events kept: each month partition is dropped once its last day is this old (0 keeps everything; daily_usage_stats keep the totals)',
  },
  relayPublishesRetentionDays: {
    env: 'RELAY_PUBLISHES_RETENTION_DAYS',
    default: 30,
    parse: int(0, 36500),
    description:
      'Days of per-relay publish results (relay_publishes) kept, the same way (0 keeps everything; the events keep their totals). Keep it above FORWARD_MAX_AGE_SECONDS',
  },
  removedEventsRetentionDays: {
    env: 'REMOVED_EVENTS_RETENTION_DAYS',
    default: 30,
    parse: int(0, 36500),
    description:
      'Days an event taken out of the served set (deleted by its author, replaced by a newer version, expired) is kept before it is erased with its tags and per-relay results (0 keeps them; removals by a ban are kept, as lifting it restores them)',
  },
  paymentsArchiveYears: {
    env: 'PAYMENTS_ARCHIVE_YEARS',
    default: 7,
    parse: int(0, 100),
    description:
      "Years after which a payment is archived: kept (accounting records), but no longer in the user's history (GET /v1/subscription); checked hourly (0 never archives)",
  },
  redisUrl: {
    env: 'REDIS_URL',
    default: '',
    parse: str,
    description:
      'Redis URL for live counters, rate limits, replay cache and cross-process fan-out; empty runs without Redis',
  },
  redisPrefix: {
    env: 'REDIS_PREFIX',
    default: 'nostrx:',
    parse: str,
    description: 'Prefix of every Redis key and channel this service uses',
  },
  redisTimeoutMs: {
    env: 'REDIS_TIMEOUT_MS',
    default: 1000,
    parse: int(50, 600000),
    description:
      'Longest wait for a Redis answer; a connection that stays silent twice as long is dropped and reopened',
  },
  answerTimeoutMs: {
    env: 'ANSWER_TIMEOUT_MS',
    default: 4000,
    parse: int(100, 600000),
    description:
      "Longest an EVENT or an API request waits for its answer: past it the relay answers OK false 'error: …' and the API 503 (within half a second more; the work may still finish: a retry of a stored event is answered duplicate)",
  },
  host: { env: 'HOST', default: '127.0.0.1', parse: str, description: 'Address to listen on' },
  port: {
    env: 'PORT',
    default: 7447,
    parse: int(0, 65535),
    description: 'Port of the relay, the NIP-11 document and the HTTP API (0 picks a free one)',
  },
  publicUrl: {
    env: 'PUBLIC_URL',
    default: '',
    parse: httpUrl,
    description:
      'Public base URL as clients see it (default http://localhost:PORT); NIP-42 and NIP-98 compare against it',
  },
  upstreamRelays: {
    env: 'UPSTREAM_RELAYS',
    default: [] as string[],
    parse: wsUrls,
    description: 'Comma-separated ws(s):// relays that accepted events are forwarded to by default',
  },
  allowPrivateRelays: {
    env: 'ALLOW_PRIVATE_RELAYS',
    default: false,
    parse: bool,
    description: 'Allow relay URLs that resolve to loopback, private or link-local addresses (SSRF guard off)',
  },
  maxCustomRelays: {
    env: 'MAX_CUSTOM_RELAYS',
    default: 10,
    parse: int(0, 100),
    description: 'Most active relays of their own (API or NIP-65) a user may have on a plan with custom relays',
  },
  forwardEnabled: {
    env: 'FORWARD_ENABLED',
    default: true,
    parse: bool,
    description:
      'Run the forwarder in this process (the outbox is still written when false; another process may forward)',
  },
  forwardConcurrency: {
    env: 'FORWARD_CONCURRENCY',
    default: 500,
    parse: int(1, 10000),
    description:
      'Events sent to upstream relays and not yet answered, at once in this process over all relays (up to four times as many answered ones may wait to be recorded)',
  },
  forwardRelayConcurrency: {
    env: 'FORWARD_RELAY_CONCURRENCY',
    default: 100,
    parse: int(1, 10000),
    description: 'Events sent to one upstream relay and not yet answered (so a slow relay cannot take every slot)',
  },
  forwardBatchSize: {
    env: 'FORWARD_BATCH_SIZE',
    default: 200,
    parse: int(1, 1000),
    description: 'Outbox rows claimed per query',
  },
  forwardPollMs: {
    env: 'FORWARD_POLL_MS',
    default: 1000,
    parse: int(10, 600000),
    description: 'How often the forwarder looks for due rows when nothing woke it',
  },
  forwardTimeoutMs: {
    env: 'FORWARD_TIMEOUT_MS',
    default: 10000,
    parse: int(50, 600000),
    description: 'Time allowed to connect to an upstream relay, and again for its OK after sending an event',
  },
  forwardMaxAttempts: {
    env: 'FORWARD_MAX_ATTEMPTS',
    default: 8,
    parse: int(1, 1000),
    description: 'Attempts per event and relay before a transient failure becomes final (failed or timeout)',
  },
  forwardMaxAgeSeconds: {
    env: 'FORWARD_MAX_AGE_SECONDS',
    default: 86400,
    parse: int(1),
    description: 'Age after which an outbox row is not retried any more',
  },
  forwardBackoffBaseMs: {
    env: 'FORWARD_BACKOFF_BASE_MS',
    default: 2000,
    parse: int(1, 86400000),
    description:
      'Delay before the first retry (doubles per attempt, minus up to 25% jitter); also the first reconnect delay',
  },
  forwardBackoffMaxMs: {
    env: 'FORWARD_BACKOFF_MAX_MS',
    default: 600000,
    parse: int(1, 86400000),
    description: 'Longest delay between retries and between reconnects',
  },
  forwardCircuitFailures: {
    env: 'FORWARD_CIRCUIT_FAILURES',
    default: 5,
    parse: int(1, 100000),
    description:
      'Consecutive failures (timeouts, connection errors, error:/rate-limited: answers) that pause an upstream relay',
  },
  forwardCircuitPauseMs: {
    env: 'FORWARD_CIRCUIT_PAUSE_MS',
    default: 60000,
    parse: int(1, 86400000),
    description: 'How long a failing upstream relay is paused before one probe attempt is let through',
  },
  adminPubkeys: {
    env: 'ADMIN_PUBKEYS',
    default: [] as string[],
    parse: hexKeys,
    description: 'Comma-separated hex pubkeys allowed on admin routes and NIP-86',
  },
  nip98WindowSeconds: {
    env: 'NIP98_WINDOW_SECONDS',
    default: 60,
    parse: int(1, 3600),
    description:
      'How far a NIP-98 Authorization event created_at may be from now, either side; tokens are remembered twice as long against replay',
  },
  sessionTtlSeconds: {
    env: 'SESSION_TTL_SECONDS',
    default: 2592000,
    parse: int(60, 31536000),
    description: 'Lifetime of an API session bearer token from POST /v1/sessions (default 30 days)',
  },
  apiBodyLimitBytes: {
    env: 'API_BODY_LIMIT_BYTES',
    default: 262144,
    parse: int(1024, 16777216),
    description: 'Largest HTTP request body accepted; larger bodies are answered 413',
  },
  apiCorsOrigins: {
    env: 'API_CORS_ORIGINS',
    default: ['*'] as string[],
    parse: origins,
    description:
      'Comma-separated origins whose pages and extensions may call /v1 from a browser (CORS), e.g. chrome-extension://<id>,https://x.com; * = any (safe: the API takes no cookies, only Authorization headers); none = no CORS headers',
  },
  paymentWebhookSecret: {
    env: 'PAYMENT_WEBHOOK_SECRET',
    default: '',
    parse: str,
    description: 'HMAC-SHA256 secret of POST /v1/webhooks/payments; empty refuses every webhook (503)',
  },
  dataEncryptionKey: {
    env: 'DATA_ENCRYPTION_KEY',
    default: '',
    parse: dataKey,
    description:
      "AES-256-GCM key of provider credentials stored in the database (users' ExtPay keys): 32 random bytes, hex or base64. Empty: ExtensionPay linking answers 503. Changing it makes the stored keys unreadable (users link again)",
  },
  extensionpayUrl: {
    env: 'EXTENSIONPAY_URL',
    default: 'https://extensionpay.com',
    parse: httpUrl,
    description: 'ExtensionPay API base; the service reads {EXTENSIONPAY_URL}/extension/{id}/api/v2/user itself',
  },
  extensionpayExtensionId: {
    env: 'EXTENSIONPAY_EXTENSION_ID',
    default: '',
    parse: str,
    description: "The extension's id at ExtensionPay (ExtPay('<id>')). Empty: ExtensionPay linking answers 503",
  },
  extensionpayPlans: {
    env: 'EXTENSIONPAY_PLANS',
    default: ['premium=premium', 'advanced=advanced'] as string[],
    parse: pairs(/^[^=]+=[a-z0-9_-]+$/, 'nickname=plan_code'),
    description: 'ExtPay plan nickname → our plan code, comma-separated nickname=plan_code',
  },
  extensionpaySyncHours: {
    env: 'EXTENSIONPAY_SYNC_HOURS',
    default: 6,
    parse: int(0, 720),
    description:
      'Hours between two re-reads of each linked ExtPay user (spread out; a failed read is retried sooner with backoff); 0 = only on link and on GET /v1/subscription?refresh=1',
  },
  extensionpaySyncConcurrency: {
    env: 'EXTENSIONPAY_SYNC_CONCURRENCY',
    default: 4,
    parse: int(1, 100),
    description: 'ExtPay users read at once by one process during the scheduled re-sync',
  },
  billingProviderTimeoutMs: {
    env: 'BILLING_PROVIDER_TIMEOUT_MS',
    default: 10000,
    parse: int(100, 120000),
    description: 'Time allowed for one request to ExtensionPay, Stripe or the Lightning wallet',
  },
  stripeSecretKey: {
    env: 'STRIPE_SECRET_KEY',
    default: '',
    parse: str,
    description: 'Stripe secret API key (sk_…). Empty: checkout and portal answer 503',
  },
  stripeWebhookSecret: {
    env: 'STRIPE_WEBHOOK_SECRET',
    default: '',
    parse: str,
    description:
      'Signing secret (whsec_…) of the Stripe webhook endpoint POST /v1/webhooks/stripe. Empty: that route answers 503',
  },
  stripePrices: {
    env: 'STRIPE_PRICES',
    default: [] as string[],
    parse: pairs(/^[a-z0-9_-]+:(monthly|yearly)=\S+$/, 'premium:monthly=price_123'),
    description:
      'Stripe Price per plan and billing cycle, comma-separated plan:cycle=price_id (cycle monthly or yearly)',
  },
  stripeApiBase: {
    env: 'STRIPE_API_BASE',
    default: '',
    parse: optionalHttpUrl,
    description:
      "Base URL of the Stripe API (protocol, host, port); empty = Stripe's own. For tests and Stripe's mock servers",
  },
  stripeSuccessUrl: {
    env: 'STRIPE_SUCCESS_URL',
    default: '',
    parse: optionalHttpUrl,
    description: 'Where Checkout sends the buyer after paying; empty = PUBLIC_URL/app/?checkout=success',
  },
  stripeCancelUrl: {
    env: 'STRIPE_CANCEL_URL',
    default: '',
    parse: optionalHttpUrl,
    description: 'Where Checkout sends a buyer who gives up; empty = PUBLIC_URL/app/?checkout=canceled',
  },
  stripePortalReturnUrl: {
    env: 'STRIPE_PORTAL_RETURN_URL',
    default: '',
    parse: optionalHttpUrl,
    description: 'Where the Billing Portal returns to; empty = PUBLIC_URL/app/',
  },
  webAppDir: {
    env: 'WEB_APP_DIR',
    default: '',
    parse: str,
    description:
      'Directory of the built account page and operator console served at /app/ (empty: dist/web of this package, written by npm run build)',
  },
  maxIdentities: {
    env: 'MAX_IDENTITIES',
    default: 5,
    parse: int(1, 100),
    description:
      'Most Nostr keys on one account, its primary key included, on plans with multiple_identities (POST /v1/me/identities)',
  },
  smtpUrl: {
    env: 'SMTP_URL',
    default: '',
    parse: smtpUrl,
    description:
      'SMTP server for verification emails, e.g. smtps://user:password@mail.example.com:465; empty sends no email (addresses are stored unverified)',
  },
  mailFrom: {
    env: 'MAIL_FROM',
    default: '',
    parse: str,
    description: 'From address of the emails sent, e.g. "NostrX <no-reply@example.com>"; required with SMTP_URL',
  },
  emailSendsPerDay: {
    env: 'EMAIL_SENDS_PER_DAY',
    default: 5,
    parse: int(1, 1000),
    description: 'Verification emails per rolling 24 hours, to one account and to one address',
  },
  emailResendSeconds: {
    env: 'EMAIL_RESEND_SECONDS',
    default: 60,
    parse: int(0, 86400),
    description: 'Seconds between two verification emails to one account',
  },
  nwcUrl: {
    env: 'NWC_URL',
    default: '',
    parse: nwcUri,
    description:
      "Nostr Wallet Connect URI of the operator's Lightning wallet (nostr+walletconnect://…, a receive-only connection allowed make_invoice and lookup_invoice, with payment_received notifications). A secret: never logged. Empty: Lightning invoices answer 503",
  },
  lightningPrices: {
    env: 'LIGHTNING_PRICES',
    default: [] as string[],
    parse: pairs(/^[a-z0-9_-]+:(monthly|yearly)=[1-9][0-9]{0,7}$/, 'premium:monthly=15000'),
    description:
      'Price in sats (1 to 99999999) per plan and billing cycle for Lightning invoices, comma-separated plan:cycle=sats; a plan and cycle without a price is not sold this way',
  },
  lightningInvoiceExpirySeconds: {
    env: 'LIGHTNING_INVOICE_EXPIRY_SECONDS',
    default: 900,
    parse: int(1, 604800),
    description:
      'How long a Lightning invoice can be paid; an invoice still unpaid then is canceled (a payment the wallet settles later is still credited)',
  },
  lightningPollMs: {
    env: 'LIGHTNING_POLL_MS',
    default: 5000,
    parse: int(100, 600000),
    description:
      'First lookup_invoice of a pending Lightning invoice after this long, then with a doubling wait (at most 30 s) until it expires: the fallback when a payment notification is lost',
  },
  logLevel: {
    env: 'LOG_LEVEL',
    default: 'info',
    parse: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    description: 'Log level',
  },
  relayName: { env: 'RELAY_NAME', default: 'NostrX relay', parse: str, description: 'NIP-11 name' },
  relayDescription: {
    env: 'RELAY_DESCRIPTION',
    default: 'Cross-posts from Twitter/X to Nostr with your own keys',
    parse: str,
    description: 'NIP-11 description',
  },
  relaySoftware: {
    env: 'RELAY_SOFTWARE',
    default: 'https://github.com/nostrx/nostrx-relay',
    parse: str,
    description: "NIP-11 software: the URL of this project's repository",
  },
  relayContact: { env: 'RELAY_CONTACT', default: '', parse: str, description: 'NIP-11 contact' },
  relayPubkey: { env: 'RELAY_PUBKEY', default: '', parse: str, description: 'NIP-11 admin pubkey' },
  maxMessageBytes: {
    env: 'MAX_MESSAGE_BYTES',
    default: 131072,
    parse: int(1024),
    description: 'Largest WebSocket message accepted (bytes)',
  },
  maxSubscriptions: {
    env: 'MAX_SUBSCRIPTIONS',
    default: 20,
    parse: int(1),
    description: 'Open subscriptions per connection',
  },
  maxFilters: { env: 'MAX_FILTERS', default: 10, parse: int(1), description: 'Filters per REQ or COUNT' },
  maxFilterValues: {
    env: 'MAX_FILTER_VALUES',
    default: 1000,
    parse: int(1),
    description: 'Values in one filter array (ids, authors, kinds, #tag)',
  },
  maxSubIdLength: { env: 'MAX_SUBID_LENGTH', default: 64, parse: int(1, 256), description: 'Longest subscription id' },
  maxLimit: { env: 'MAX_LIMIT', default: 500, parse: int(1), description: 'Largest limit of a stored-events query' },
  defaultLimit: { env: 'DEFAULT_LIMIT', default: 100, parse: int(1), description: 'Limit used when a filter has none' },
  maxEventTags: { env: 'MAX_EVENT_TAGS', default: 2000, parse: int(1), description: 'Tags per event' },
  maxTagElementLength: {
    env: 'MAX_TAG_ELEMENT_LENGTH',
    default: 1024,
    parse: int(1),
    description: 'Longest string inside a tag',
  },
  maxContentLength: {
    env: 'MAX_CONTENT_LENGTH',
    default: 65536,
    parse: int(1),
    description: 'Longest event content (characters)',
  },
  createdAtPastSeconds: {
    env: 'CREATED_AT_PAST_SECONDS',
    default: 94608000,
    parse: int(0),
    description: 'How far in the past created_at may be (default 3 years)',
  },
  createdAtFutureSeconds: {
    env: 'CREATED_AT_FUTURE_SECONDS',
    default: 900,
    parse: int(0),
    description: 'How far in the future created_at may be',
  },
  maxConnectionsPerIp: {
    env: 'MAX_CONNECTIONS_PER_IP',
    default: 20000,
    parse: int(1),
    description: 'Open WebSocket connections from one IP address; more are answered 429 before the handshake',
  },
  trustProxy: {
    env: 'TRUST_PROXY',
    default: false,
    parse: bool,
    description: 'Take the client IP from X-Forwarded-For (set when behind a load balancer)',
  },
  maxBufferedBytes: {
    env: 'MAX_BUFFERED_BYTES',
    default: 4194304,
    parse: int(65536),
    description: 'Outgoing bytes queued for one connection before it is dropped as a slow reader',
  },
  authRequiredForWrite: {
    env: 'AUTH_REQUIRED_FOR_WRITE',
    default: false,
    parse: bool,
    description: 'Require NIP-42 AUTH before EVENT, and only accept events by authenticated pubkeys',
  },
  postKinds: {
    env: 'POST_KINDS',
    default: [1, 6, 16, 30023] as number[],
    parse: intList,
    description: 'Kinds that count against the daily/monthly quota',
  },
  rateLimitIpPerSecond: {
    env: 'RATE_LIMIT_IP_PER_SECOND',
    default: 1000,
    parse: int(0),
    description:
      'Relay messages and /v1 API requests per second from one IP address, over all its connections and processes (token bucket; 0 = no limit)',
  },
  rateLimitIpBurst: {
    env: 'RATE_LIMIT_IP_BURST',
    default: 5000,
    parse: int(1),
    description: 'Messages and requests one IP address may send at once before RATE_LIMIT_IP_PER_SECOND applies',
  },
  rateLimitConnPerSecond: {
    env: 'RATE_LIMIT_CONN_PER_SECOND',
    default: 200,
    parse: int(0),
    description: 'Relay messages per second on one connection (token bucket; 0 = no limit)',
  },
  rateLimitConnBurst: {
    env: 'RATE_LIMIT_CONN_BURST',
    default: 1000,
    parse: int(1),
    description: 'Messages one connection may send at once before RATE_LIMIT_CONN_PER_SECOND applies',
  },
  workers: {
    env: 'WORKERS',
    default: 1,
    parse: int(1, 64),
    description: 'Processes serving the same port (node cluster)',
  },
  verifyBackend: {
    env: 'VERIFY_BACKEND',
    default: 'auto' as 'auto' | 'native' | 'wasm',
    parse: oneOf(['auto', 'native', 'wasm'] as const),
    description:
      "Who checks event signatures: native = bcrypto's binding to libsecp256k1 (~5× faster), wasm = nostr-wasm, auto = native when it loaded and passed its self-check at start, else wasm",
  },
  verifyInlineUpTo: {
    env: 'VERIFY_INLINE_UP_TO',
    default: 8,
    parse: int(0, 10000),
    description:
      'With the native backend, an event-loop turn that asks for at most this many signature checks makes them on the main thread instead of a verifier thread (a check costs less than the hop); 0 = always on the threads',
  },
  nip77Enabled: {
    env: 'NIP77_ENABLED',
    default: true,
    parse: bool,
    description:
      'Serve NIP-77 negentropy reconciliation (NEG-OPEN / NEG-MSG / NEG-CLOSE) under the read rules of REQ; listed in NIP-11 supported_nips only when on',
  },
  nip77MaxRecords: {
    env: 'NIP77_MAX_RECORDS',
    default: 100000,
    parse: int(1, 10000000),
    description:
      'Most stored events one negentropy session may reconcile (held in memory while it is open); a NEG-OPEN whose filter matches more is answered NEG-ERR "blocked:"',
  },
  nip77IdleSeconds: {
    env: 'NIP77_IDLE_SECONDS',
    default: 60,
    parse: int(1, 86400),
    description: 'A negentropy session with no NEG-MSG for this long is closed (NEG-ERR "closed:")',
  },
  reconcileDays: {
    env: 'RECONCILE_DAYS',
    default: 7,
    parse: int(1, 3650),
    description:
      'Delivery audit: how many days back each upstream relay that supports NIP-77 is reconciled against the events forwarded to it (daily, and on demand with POST /v1/me/relays/reconcile)',
  },
  reconcileEnabled: {
    env: 'RECONCILE_ENABLED',
    default: true,
    parse: bool,
    description: 'Run the daily delivery audit (NIP-77 reconciliation with upstream relays) in this process',
  },
  verifyThreads: {
    env: 'VERIFY_THREADS',
    default: -1,
    parse: int(-1, 64),
    description:
      'Threads per process that check event signatures beside the main thread: 0 = on the main thread, -1 = the cores divided among WORKERS',
  },
} satisfies Record<string, KeySpec<unknown>>;

type Spec = typeof spec;
export type Config = { readonly [K in keyof Spec]: Spec[K]['default'] };

export const configKeys: readonly { env: string; default: unknown; description: string }[] = Object.values(spec).map(
  ({ env, default: d, description }) => ({ env, default: d, description }),
);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(spec) as [string, KeySpec<unknown>][]) {
    const raw = env[key.env];
    out[name] = raw === undefined || raw === '' ? key.default : key.parse(raw, key.env);
  }
  const config = out as Config;
  if (config.smtpUrl && !config.mailFrom)
    throw new ConfigError('MAIL_FROM is required with SMTP_URL (the From address of the emails sent)');
  // With PORT=0 the port is known only after listen; the server fills PUBLIC_URL in then (withPort).
  const publicUrl = config.publicUrl || (config.port ? `http://localhost:${config.port}` : '');
  return Object.freeze({ ...config, publicUrl });
}

/** VERIFY_THREADS resolved: -1 shares the machine's cores among the WORKERS processes, at least one each. */
export function verifyThreadsOf(
  config: Pick<Config, 'verifyThreads' | 'workers'>,
  cores = availableParallelism(),
): number {
  if (config.verifyThreads >= 0) return config.verifyThreads;
  return Math.max(1, Math.floor(cores / config.workers));
}

/** The config once the listening port is known: fills the default PUBLIC_URL for PORT=0. */
export function withPort(config: Config, port: number): Config {
  if (config.publicUrl) return config;
  return Object.freeze({ ...config, port, publicUrl: `http://localhost:${port}` });
}

/** The relay's own WebSocket URL, derived from PUBLIC_URL (http→ws, https→wss). */
export function relayUrl(config: Pick<Config, 'publicUrl'>): string {
  return config.publicUrl.replace(/^http/, 'ws') + '/';
}
