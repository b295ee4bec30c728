// The composition root: builds store, core, relay and api with plain calls and shows the whole topology here.
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { relayUrl as relayUrlOf, withPort, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import * as nip01 from './nips/nip01.js';
import { corsHeaders } from './nips/nip11.js';
import { createAccounts, type Accounts } from './core/accounts.js';
import { createPlans, type Plans } from './core/plans.js';
import { createAdmission, measured, type Admit } from './core/admission.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import { createFanOut, type FanOut } from './core/fanout.js';
import { createQueries, type EventQueries } from './core/query.js';
import { checkReadiness } from './core/health.js';
import { startMaintenance } from './core/maintenance.js';
import { openDatabase, type Database } from './store/db.js';
import { migrateLatest } from './store/migrate.js';
import { ensureMonthlyPartitions } from './store/partitions.js';
import { redisFanOutBridge } from './store/pubsub.js';
import { openRedis, type Redis } from './store/redis.js';
import { registerOpsRoutes } from './api/ops-routes.js';
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
  close(): Promise<void>;
}

function clientIpOf(trustProxy: boolean): (req: IncomingMessage) => string {
  return (req) => {
    const forwarded = trustProxy ? req.headers['x-forwarded-for'] : undefined;
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    return first || req.socket.remoteAddress || 'unknown';
  };
}

export async function startApp(opts: AppOptions): Promise<App> {
  let config = opts.config;
  const log = opts.log ?? createLogger(config.logLevel);
  await nip01.initVerifier();

  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: config.dbPoolMax });
  const applied = await migrateLatest(db.knex);
  if (applied.length > 0) log.info({ applied, db: db.kind }, 'migrations applied');
  await ensureMonthlyPartitions(db.knex, new Date());

  const redis = config.redisUrl ? await openRedis(config.redisUrl, 'nostrx') : undefined;
  const fanout = createFanOut(
    redis && redisFanOutBridge(redis, `${config.redisPrefix}events`, (err) => log.error({ err }, 'redis fan-out failed')),
    (err) => log.error({ err }, 'a fan-out listener failed'),
  );
  const accounts = createAccounts(db.knex);
  const plans = createPlans(db.knex);
  const metrics = createMetrics();
  const admit = measured(createAdmission({ db: db.knex, config, log, accounts, fanout, ...(opts.now ? { now: opts.now } : {}) }), metrics);
  const queries = createQueries(db.knex, config, opts.now);

  const httpLog: FastifyBaseLogger = log;
  const http = Fastify({ loggerInstance: httpLog, trustProxy: config.trustProxy, bodyLimit: 256 * 1024, disableRequestLogging: true });
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
  const maintenance = startMaintenance({ db: db.knex, log, ...(opts.now ? { now: opts.now } : {}) });
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
    async close() {
      maintenance.stop();
      await relay.close();
      await http.close();
      await fanout.close();
      redis?.disconnect();
      await db.close();
    },
  };
}
