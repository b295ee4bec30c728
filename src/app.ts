// The composition root: builds store, core, relay and api with plain calls and shows the whole topology here.
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { relayUrl as relayUrlOf, verifyThreadsOf, withPort, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import * as nip01 from './nips/nip01.js';
import { corsHeaders } from './nips/nip11.js';
import { createAccounts, type Accounts } from './core/accounts.js';
import { createPlans, type Plans } from './core/plans.js';
import { createAdmission, measured, type Admit } from './core/admission.js';
import { withAnswerDeadline } from './core/admission/answer-deadline.js';
import { createVerifierPool } from './core/verifier-pool.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import { createFanOut, type FanOut } from './core/fanout.js';
import { createQueries, type EventQueries } from './core/query.js';
import { checkReadiness } from './core/health.js';
import { startMaintenance } from './core/maintenance.js';
import { createForwarder, wakeOnAccepted, type Forwarder } from './core/forwarder.js';
import { createOutboxStage } from './core/outbox.js';
import { createQuota, type Quota } from './core/quota.js';
import { createUsageRecorder, type UsageRecorder } from './core/usage-recorder.js';
import { createRateLimits, type RateLimits } from './core/rate-limits.js';
import { createCacheInvalidation, type CacheInvalidation } from './core/cache-invalidation.js';
import type { AccountAdminDeps } from './core/account-admin.js';
import { memoryQuotaCounters, redisQuotaCounters } from './store/quota-counters.js';
import { memoryTokenBuckets, redisTokenBuckets } from './store/rate-limit-store.js';
import { openDatabase, type Database } from './store/db.js';
import { migrateLatest } from './store/migrate.js';
import { ensureMonthlyPartitions } from './store/partitions.js';
import { redisChannel } from './store/pubsub.js';
import { openRedis, type Redis } from './store/redis.js';
import { quietly } from './lib/quiet.js';
import { registerOpsRoutes } from './api/ops-routes.js';
import { apiServerOptions, registerApi } from './api/index.js';
import { createBans } from './core/bans.js';
import { relayInfo } from './relay/info.js';
import { attachRelay, type RelayServer } from './relay/server.js';

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
  /** What changePlan / setUserStatus / quotaStatus (core/account-admin.ts) take. */
  readonly accountAdmin: AccountAdminDeps;
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

export async function startApp(opts: AppOptions): Promise<App> {
  let config = opts.config;
  const log = opts.log ?? createLogger(config.logLevel);
  const signatures = await nip01.initVerifier({ backend: config.verifyBackend });
  if (signatures.nativeUnavailable) log.warn({ why: signatures.nativeUnavailable }, 'native signature checks unavailable; using nostr-wasm (~5× slower)');
  const verifier = await createVerifierPool({ threads: verifyThreadsOf(config), log, backend: signatures.backend, inlineUpTo: config.verifyInlineUpTo });
  log.info({ backend: signatures.backend, threads: verifier.threads }, 'signature verification ready');

  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolMax: config.dbPoolMax,
    limits: { connectMs: config.dbConnectTimeoutMs, acquireMs: config.dbAcquireTimeoutMs, queryMs: config.dbQueryTimeoutMs },
    onWarning: quietly((message, repeats) => log.warn({ driver: message, repeats }, 'database driver warning')),
  });
  // Migrations and DDL may rightly take long on a large database: they run without the serving limits.
  const applied = await db.withoutLimits(async (knex) => {
    const names = await migrateLatest(knex);
    await ensureMonthlyPartitions(knex, new Date());
    return names;
  });
  if (applied.length > 0) log.info({ applied, db: db.kind }, 'migrations applied');

  const redis = config.redisUrl
    ? await openRedis(config.redisUrl, 'nostrx', (err, repeats) => log.warn({ err, repeats }, 'redis connection error (commands wait, then fail, until it is back)'), {
        timeoutMs: config.redisTimeoutMs,
      })
    : undefined;
  const fanout = createFanOut(
    redis && redisChannel(redis, `${config.redisPrefix}events`, quietErrors(log, 'redis fan-out failed')),
    (err) => log.error({ err }, 'a fan-out listener failed'),
  );
  const plans = createPlans(db.knex);
  const accounts = createAccounts(db.knex, { plans });
  const metrics = createMetrics();
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
    channel: redis && redisChannel(redis, `${config.redisPrefix}invalidate`, quietErrors(log, 'cache invalidation over Redis failed')),
  });
  const accountAdmin: AccountAdminDeps = { db: db.knex, plans, quota, invalidation, usage, now: opts.now };
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
  const stages = { ...quota.stages, ...createOutboxStage({ config, log, plans }), checkBans: bans.check };
  const admit = wakeOnAccepted(
    measured(
      withAnswerDeadline(
        createAdmission({ db: db.knex, config, log, accounts, fanout, stages, verify: verifier.verify, onBatch: (n, seconds) => { metrics.writeBatchSize.observe(n); metrics.writeBatchSeconds.observe(seconds); }, ...(opts.now ? { now: opts.now } : {}) }),
        { ms: config.answerTimeoutMs, log },
      ),
      metrics,
    ),
    forwarder,
  );
  const queries = createQueries(db.knex, config, opts.now);

  const httpLog: FastifyBaseLogger = log;
  const http = Fastify({
    loggerInstance: httpLog,
    trustProxy: config.trustProxy,
    // one log line per API request, with its request id; probes and scrapes would only add noise
    logController: new LogController({ disableRequestLogging: (req) => quietPaths.has(req.url) }),
    ...apiServerOptions(config),
  });
  // The HTTP API first, so its OpenAPI document sees every route declared after it.
  await registerApi(http, {
    config,
    publicUrl: () => config.publicUrl,
    log,
    db: db.knex,
    redis,
    admit,
    accounts,
    plans,
    bans,
    invalidation,
    accountAdmin,
    now: opts.now ?? (() => Math.floor(Date.now() / 1000)),
    checkIp: (ip) => rateLimits.checkIp(ip),
  });
  http.get('/', async (req, reply) => {
    if ((req.headers.accept ?? '').includes('application/nostr+json')) {
      const doc = relayInfo(config, await plans.all(), version);
      return reply.headers(corsHeaders).type('application/nostr+json').send(doc);
    }
    return reply.type('text/plain').send(`${config.relayName}: connect a Nostr client to ${relayUrlOf(config)}\n`);
  });
  http.options('/', async (_req, reply) => reply.headers(corsHeaders).code(204).send());
  registerOpsRoutes(http, { metrics, readiness: () => checkReadiness(db, redis) });

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
  });
  metrics.probes.connections = () => relay.connectionCount();
  metrics.probes.subscriptions = () => relay.subscriptions.size;
  metrics.probes.redisUp = () => (redis ? Number(redis.status === 'ready') : -1);
  metrics.probes.dbPool = () => db.poolStats();
  metrics.probes.forwardInFlight = () => forwarder.inFlight();
  const maintenance = startMaintenance({
    db: db.knex,
    log,
    retention: { usage_events: config.usageEventsRetentionDays, relay_publishes: config.relayPublishesRetentionDays },
    removedEventsDays: config.removedEventsRetentionDays,
    paymentsArchiveYears: config.paymentsArchiveYears,
    ...(opts.now ? { now: opts.now } : {}),
  });
  if (config.forwardEnabled) forwarder.start();
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
    async close() {
      maintenance.stop();
      await relay.close();
      await http.close();
      await forwarder.stop();
      await verifier.close();
      await usage.close();
      await invalidation.close();
      await bans.close();
      await fanout.close();
      redis?.disconnect();
      await db.close();
    },
  };
}
