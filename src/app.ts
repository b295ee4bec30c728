// The composition root: builds store, core, relay and api with plain calls and shows the whole topology here.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Knex } from 'knex';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { relayUrl as relayUrlOf, verifyThreadsOf, withPort, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import * as nip01 from './nips/nip01.js';
import { corsHeaders } from './nips/nip11.js';
import {
  createAccounts,
  createCacheInvalidation,
  createEmailVerification,
  createHttpAuth,
  createIdentities,
  createProfiles,
  createSessions,
  createSmtpMailer,
  createUserDirectory,
  linkedKeyCheck,
  replayCache,
  type AccountAdminDeps,
  type Accounts,
  type CacheInvalidation,
} from './core/accounts/index.js';
import { createAdmission, createVerifierPool, withAnswerDeadline, type Admit } from './core/admission/index.js';
import { quietly } from './lib/quiet.js';
import { createBilling, createPayments, type Billing } from './core/billing/index.js';
import {
  createEventRecords,
  createFanOut,
  createQueries,
  type EventQueries,
  type FanOut,
} from './core/events/index.js';
import {
  createForwarder,
  createOutboxStage,
  createRelaySettings,
  wakeOnQueued,
  type Forwarder,
} from './core/forwarding/index.js';
import { createBans } from './core/moderation/index.js';
import {
  checkReadiness,
  countAdmissions,
  createAuditTrail,
  createLiveOverview,
  createMetrics,
  createReports,
  createUsageRecorder,
  startMaintenance,
  type Metrics,
  type UsageRecorder,
} from './core/ops/index.js';
import {
  createPlans,
  createQuota,
  createRateLimits,
  type Plans,
  type Quota,
  type RateLimits,
} from './core/quota/index.js';
import { memoryQuotaCounters, redisQuotaCounters } from './store/quota-counters.js';
import { memoryTokenBuckets, redisTokenBuckets } from './store/rate-limit-store.js';
import { openDatabase, type Database } from './store/db.js';
import { primaryReads, replicaReads, type Reads } from './store/read-replica.js';
import { migrateLatest } from './store/migrate.js';
import { analyzesAsTablesGrow } from './store/server-settings.js';
import { ensureMonthlyPartitions } from './store/partitions.js';
import { outboxBacklog } from './store/outbox.js';
import { redisChannel } from './store/pubsub.js';
import { openRedis, type Redis } from './store/redis.js';
import { registerOpsRoutes } from './api/ops-routes.js';
import { apiServerOptions, MAX_AUTH_HEADER_LENGTH, registerApi } from './api/index.js';
import { defaultWebAppDir, registerWebApp } from './api/web-app.js';
import { relayInfo } from './relay/info.js';
import { attachRelay, type RelayServer } from './relay/server.js';
import { createNegentropySessions } from './core/events/index.js';
import { createDeliveryAudit, type DeliveryAudit } from './core/forwarding/index.js';

/** The package version, from src/ under tsx and from dist/src/ when built. */
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // not at this level
    }
  }
  return '0.0.0';
}
const version = readVersion();

export interface AppOptions {
  readonly config: Config;
  readonly log?: Logger;
  /** Seconds since the epoch; injectable for tests. */
  readonly now?: () => number;
}

export interface App {
  readonly config: Config;
  readonly url: string;
  readonly relayUrl: string;
  readonly log: Logger;
  readonly db: Database;
  readonly redis: Redis | undefined;
  readonly http: FastifyInstance;
  readonly relay: RelayServer;
  readonly admit: Admit;
  readonly queries: EventQueries;
  readonly fanout: FanOut;
  readonly metrics: Metrics;
  readonly accounts: Accounts;
  readonly plans: Plans;
  /** The forwarding outbox worker of this process (started only with FORWARD_ENABLED). */
  readonly forwarder: Forwarder;
  readonly quota: Quota;
  readonly usage: UsageRecorder;
  readonly rateLimits: RateLimits;
  readonly invalidation: CacheInvalidation;
  /** What changePlan / setUserStatus / quotaStatus (core/accounts/account-admin.ts) take. */
  readonly accountAdmin: AccountAdminDeps;
  /** Payments: Stripe, ExtensionPay (and its scheduled re-sync), Lightning (NWC), the ledger that applies what they say. */
  readonly billing: Billing;
  /** NIP-77 delivery audits of users' relays (reconciliation with upstream relays). */
  readonly deliveryAudit: DeliveryAudit;
  close(): Promise<void>;
}

function clientIpOf(trustProxy: boolean): (req: IncomingMessage) => string {
  return (req) => {
    const forwarded = trustProxy ? req.headers['x-forwarded-for'] : undefined;
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    return first || req.socket.remoteAddress || 'unknown';
  };
}

/** An error log for a failure that repeats while Redis is away (one per event published): once per half minute. */
function quietErrors(log: Logger, msg: string): (err: unknown) => void {
  let latest: unknown;
  const report = quietly((_message, repeats) => log.error({ err: latest, repeats }, msg));
  return (err) => {
    latest = err;
    report(err instanceof Error ? err.message : String(err));
  };
}

const quietPaths = new Set(['/healthz', '/readyz', '/metrics']);

/** Logs a warning when the server does not analyze tables as they grow (store/server-settings.ts says why it matters). */
export async function warnUnlessTablesAnalyzed(knex: Knex, log: Logger): Promise<void> {
  if (await analyzesAsTablesGrow(knex)) return;
  log.warn(
    { autovacuum: 'off' },
    'PostgreSQL does not analyze tables as they grow (autovacuum or track_counts off): plans cached on a small store are kept as it grows; see docs/operations.md',
  );
}

export async function startApp(opts: AppOptions): Promise<App> {
  let config = opts.config;
  const log = opts.log ?? createLogger(config.logLevel);
  const signatures = await nip01.initVerifier({ backend: config.verifyBackend });
  if (signatures.nativeUnavailable)
    log.warn(
      { why: signatures.nativeUnavailable },
      'native signature checks unavailable; using nostr-wasm (~5× slower)',
    );
  const verifier = await createVerifierPool({
    threads: verifyThreadsOf(config),
    log,
    backend: signatures.backend,
    inlineUpTo: config.verifyInlineUpTo,
  });
  log.info({ backend: signatures.backend, threads: verifier.threads }, 'signature verification ready');

  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolMax: config.dbPoolMax,
    poolMin: config.dbPoolMin,
    readUrl: config.databaseReadUrl,
    limits: {
      connectMs: config.dbConnectTimeoutMs,
      acquireMs: config.dbAcquireTimeoutMs,
      queryMs: config.dbQueryTimeoutMs,
    },
    onWarning: quietly((message, repeats) => log.warn({ driver: message, repeats }, 'database driver warning')),
  });
  // Migrations and DDL may rightly take long on a large database: they run without the serving limits. The months
  // ahead are created before anything is served, on the service's clock as maintenance does (injected in tests;
  // relay_publishes rows take the database's now(), the same clock in production): no write path creates one.
  const applied = await db.withoutLimits(async (knex) => {
    const names = await migrateLatest(knex);
    await ensureMonthlyPartitions(knex, new Date(opts.now ? opts.now() * 1000 : Date.now()));
    return names;
  });
  if (applied.length > 0) log.info({ applied, db: db.kind }, 'migrations applied');
  // PGlite runs no statement as a prepared one, so no plan outlives the statistics it was made from. A cluster's
  // workers leave the check to the primary, which says it once (index.ts).
  if (db.kind === 'pg' && !cluster.isWorker) await warnUnlessTablesAnalyzed(db.knex, log);
  const metrics = createMetrics();
  // Reads that tolerate lag (REQ, COUNT, reports, exports) go to the replica while it is well, else to the primary.
  const reads: Reads = db.replica
    ? replicaReads({
        primary: db.knex,
        replica: db.replica.knex,
        checkMs: config.databaseReadCheckSeconds * 1000,
        maxLagSeconds: config.databaseReadMaxLagSeconds,
        onChange: (now, before) => {
          const fields = { replica: now.state, was: before.state, lagSeconds: now.lagSeconds, reason: now.reason };
          if (now.state === 'up') log.info(fields, 'read replica in use');
          else log.warn(fields, 'read replica out of use: reads go to the primary');
        },
        onRead: (server, reason) => metrics.dbReads.inc({ server, reason }),
      })
    : primaryReads(db.knex);

  const redis = config.redisUrl
    ? await openRedis(
        config.redisUrl,
        'nostrx',
        (err, repeats) =>
          log.warn({ err, repeats }, 'redis connection error (commands wait, then fail, until it is back)'),
        {
          timeoutMs: config.redisTimeoutMs,
        },
      )
    : undefined;
  const fanout = createFanOut(
    redis && redisChannel(redis, `${config.redisPrefix}events`, quietErrors(log, 'redis fan-out failed')),
    (err) => log.error({ err }, 'a fan-out listener failed'),
  );
  const plans = createPlans(db.knex);
  const accounts = createAccounts(db.knex, { plans, log });
  // in the background: until the keys are in, every first post is looked up, as any post of an uncached author is
  void accounts.loadKeys();
  // Quotas: Redis counters (or memory) for fast refusals, the user_quotas ledger as arbiter; usage rows batched.
  const usage = createUsageRecorder({ db: db.knex, log });
  const quota = createQuota({
    db: db.knex,
    log,
    plans,
    postKinds: config.postKinds,
    counters: redis ? redisQuotaCounters(redis, config.redisPrefix) : memoryQuotaCounters(),
    usage,
    now: opts.now,
    onRejected: (plan, period) => metrics.quotaRejections.inc({ plan, period }),
  });
  const invalidation = createCacheInvalidation({
    plans,
    accounts,
    onUserPlan: (userId) => quota.forget(userId),
    channel:
      redis &&
      redisChannel(redis, `${config.redisPrefix}invalidate`, quietErrors(log, 'cache invalidation over Redis failed')),
  });
  const accountAdmin: AccountAdminDeps = { db: db.knex, plans, quota, invalidation, usage, now: opts.now };
  // Payments (core/billing/): provider facts applied by one ledger; ExtensionPay re-read on a schedule.
  const billing = createBilling({
    config,
    publicUrl: () => config.publicUrl,
    db: db.knex,
    plans,
    invalidation,
    log,
    metrics,
  });
  const rateLimits = createRateLimits({
    settings: {
      ipPerSecond: config.rateLimitIpPerSecond,
      ipBurst: config.rateLimitIpBurst,
      connPerSecond: config.rateLimitConnPerSecond,
      connBurst: config.rateLimitConnBurst,
    },
    ipBuckets: redis ? redisTokenBuckets(redis, config.redisPrefix) : memoryTokenBuckets(),
    shared: Boolean(redis),
    log,
    onLimited: (scope) => metrics.rateLimited.inc({ scope }),
  });
  // Forwarding: admission writes the outbox rows (enqueueForwarding); the forwarder is woken after each commit.
  const forwarder = createForwarder({ db: db.knex, config, log, metrics });
  // NIP-86 bans, in memory (reloaded on change, across processes over Redis): admission's checkBans stage.
  const bans = await createBans({ db: db.knex, log, redis, redisPrefix: config.redisPrefix });
  // Admission: the quota, forwarding and moderation phases plug into the pipeline; what follows a stored event
  // (fan-out) and every outcome (metrics, the forwarder's wake-up) are listeners.
  // A key linked to an account posts only while the account's plan has multiple identities (core/accounts/identities.ts).
  const stages = {
    ...quota.stages,
    ...createOutboxStage({ config, log, plans }),
    checkBans: (ev: nip01.NostrEvent) => bans.check(ev),
    checkLinkedKey: linkedKeyCheck({ plans, isPost: (kind) => quota.isPost(kind) }),
  };
  const admission = createAdmission({
    db: db.knex,
    config,
    log,
    accounts,
    stages,
    listeners: {
      published: [(ev) => fanout.publish(ev)],
      settled: [countAdmissions(metrics), wakeOnQueued(forwarder)],
    },
    verify: verifier.verify,
    onBatch: (n, seconds) => {
      metrics.writeBatchSize.observe(n);
      metrics.writeBatchSeconds.observe(seconds);
    },
    ...(opts.now ? { now: opts.now } : {}),
  });
  // Every event stored here or by another process reaches the fan-out: admission forgets the ids a deletion names,
  // and the author's key names an account, so their first post to this process needs no second try
  // (core/accounts/known-keys.ts).
  fanout.subscribe(({ event }) => {
    admission.forgetDeleted(event);
    accounts.keyInUse(event.pubkey);
  });
  // Every EVENT is answered within ANSWER_TIMEOUT_MS whatever the database or Redis do (core/admission/answer-deadline.ts).
  const admit = withAnswerDeadline(admission.admit, {
    ms: config.answerTimeoutMs,
    log,
    onTimeout: (via) => metrics.deadlineAnswers.inc({ via }),
  });
  const queries = createQueries(reads, config, {
    ...(opts.now ? { now: opts.now } : {}),
    onStatement: (n, seconds, outcome) => {
      metrics.readStatementFilters.observe(n);
      metrics.readStatementSeconds.observe({ outcome }, seconds);
    },
  });
  // The operator console's live figures, sampled from this process's metrics and the forwarder's breakers.
  const overview = createLiveOverview({
    metrics,
    upstreamRelays: config.upstreamRelays,
    breaker: (url) => forwarder.pool.breaker(url),
    backlog: () => outboxBacklog(db.knex),
  });
  // Delivery audits: NIP-77 reconciliation with the upstream relays; what they lack goes back into the outbox.
  const deliveryAudit = createDeliveryAudit({
    db: db.knex,
    log,
    config,
    onQueued: () => forwarder.wake(),
    ...(opts.now ? { now: opts.now } : {}),
  });

  const httpLog: FastifyBaseLogger = log;
  const http = Fastify({
    loggerInstance: httpLog,
    trustProxy: config.trustProxy,
    // fastify's own request logging writes two lines per request; ours (below) writes one
    logController: new LogController({ disableRequestLogging: true }),
    ...apiServerOptions(config),
  });
  // One log line per HTTP request, when it is answered, with its request id; probes and scrapes would only add noise.
  http.addHook('onResponse', async (req, reply) => {
    if (quietPaths.has(req.url)) return;
    req.log.info(
      { method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request',
    );
  });
  // The HTTP API's services; registered first, so its OpenAPI document sees every route declared after it.
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const sessions = createSessions({ db: db.knex, ttlSeconds: config.sessionTtlSeconds, now });
  // Verification emails through SMTP when SMTP_URL is set; without it addresses are stored unverified.
  const mailer = config.smtpUrl ? createSmtpMailer(config.smtpUrl, config.mailFrom) : undefined;
  await registerApi(http, {
    config,
    publicUrl: () => config.publicUrl,
    log,
    admit,
    onDeadlineAnswer: () => metrics.deadlineAnswers.inc({ via: 'http' }),
    accounts,
    plans,
    bans,
    invalidation,
    accountAdmin,
    sessions,
    auth: createHttpAuth({
      accounts,
      sessions,
      replay: replayCache(redis, config.redisPrefix),
      windowSeconds: config.nip98WindowSeconds,
      maxHeaderLength: MAX_AUTH_HEADER_LENGTH,
      now,
    }),
    profiles: createProfiles({ db: db.knex, reads, invalidation }),
    identities: createIdentities({ db: db.knex, plans, invalidation, maxIdentities: config.maxIdentities, now }),
    emailVerification: createEmailVerification({
      db: db.knex,
      log,
      mailer,
      publicUrl: () => config.publicUrl,
      limits: { perDay: config.emailSendsPerDay, minIntervalSeconds: config.emailResendSeconds },
      now,
    }),
    records: createEventRecords(db.knex),
    reports: createReports(reads),
    directory: createUserDirectory(db.knex),
    auditTrail: createAuditTrail(db.knex),
    payments: createPayments({ db: db.knex, plans, invalidation, now }),
    relaySettings: createRelaySettings({
      db: db.knex,
      policy: { allowPrivate: config.allowPrivateRelays },
      maxCustomRelays: config.maxCustomRelays,
    }),
    now,
    billing,
    deliveryAudit,
    checkIp: (ip) => rateLimits.checkIp(ip),
    overview,
  });
  registerWebApp(http, { dir: config.webAppDir || defaultWebAppDir() });
  http.get('/', async (req, reply) => {
    if ((req.headers.accept ?? '').includes('application/nostr+json')) {
      const doc = relayInfo(config, await plans.all(), version);
      return reply.headers(corsHeaders).type('application/nostr+json').send(doc);
    }
    return reply.type('text/plain').send(`${config.relayName}: connect a Nostr client to ${relayUrlOf(config)}\n`);
  });
  http.options('/', async (_req, reply) => reply.headers(corsHeaders).code(204).send());
  registerOpsRoutes(http, { metrics, readiness: () => checkReadiness(db, redis, reads.status()) });

  await http.listen({ host: config.host, port: config.port });
  const address = http.server.address();
  if (address && typeof address === 'object') config = withPort(config, address.port);
  const relayUrl = relayUrlOf(config);

  const relay = attachRelay(http.server, {
    log,
    admit,
    queries,
    fanout,
    relayUrl,
    path: '/',
    authWindowSeconds: 600,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    clientIp: clientIpOf(config.trustProxy),
    checkRate: (ip, connId) => rateLimits.check(ip, connId),
    onMessage: (type) => metrics.messages.inc({ type }),
    onSlowReader: () => metrics.slowReadersDropped.inc(),
    onDelivered: (n) => metrics.deliveries.inc(n),
    limits: {
      maxMessageBytes: config.maxMessageBytes,
      maxSubscriptions: config.maxSubscriptions,
      maxBufferedBytes: config.maxBufferedBytes,
      maxQueued: 64,
      maxSubIdLength: config.maxSubIdLength,
      maxFilters: config.maxFilters,
      maxLimit: config.maxLimit,
      defaultLimit: config.defaultLimit,
      maxFilterValues: config.maxFilterValues,
    },
    ...(opts.now ? { now: opts.now } : {}),
    ...(config.nip77Enabled
      ? {
          negentropy: (onIdleClosed: (subId: string, reason: string) => void) =>
            createNegentropySessions({
              db: db.knex,
              limits: {
                maxRecords: config.nip77MaxRecords,
                idleMs: config.nip77IdleSeconds * 1000,
                maxSessions: config.maxSubscriptions,
              },
              onIdleClosed,
              ...(opts.now ? { now: opts.now } : {}),
            }),
        }
      : {}),
  });
  metrics.probes.connections = () => relay.connectionCount();
  metrics.probes.subscriptions = () => relay.subscriptions.size;
  metrics.probes.redisUp = () => (redis ? Number(redis.status === 'ready') : -1);
  metrics.probes.dbPool = () => db.poolStats();
  metrics.probes.forwardInFlight = () => forwarder.inFlight();
  metrics.probes.replica = () => reads.status();
  const maintenance = startMaintenance({
    db: db.knex,
    log,
    retention: { usage_events: config.usageEventsRetentionDays, relay_publishes: config.relayPublishesRetentionDays },
    removedEventsDays: config.removedEventsRetentionDays,
    paymentsArchiveYears: config.paymentsArchiveYears,
    ...(opts.now ? { now: opts.now } : {}),
  });
  if (config.forwardEnabled) forwarder.start();
  billing.extensionpay.start();
  overview.start();
  if (config.reconcileEnabled) deliveryAudit.start();
  billing.lightning.start();
  log.info({ url: config.publicUrl, relay: relayUrl, db: db.kind, redis: Boolean(redis) }, 'nostrx listening');

  return {
    config,
    url: config.publicUrl,
    relayUrl,
    log,
    db,
    redis,
    http,
    relay,
    admit,
    queries,
    fanout,
    metrics,
    accounts,
    plans,
    forwarder,
    quota,
    usage,
    rateLimits,
    invalidation,
    accountAdmin,
    billing,
    deliveryAudit,
    async close() {
      maintenance.stop();
      deliveryAudit.stop();
      await billing.close();
      overview.stop();
      await relay.close();
      await http.close();
      await forwarder.stop();
      await verifier.close();
      await usage.close();
      mailer?.close();
      await invalidation.close();
      await bans.close();
      await accounts.close();
      await fanout.close();
      redis?.disconnect();
      reads.close();
      await db.close();
    },
  };
}
