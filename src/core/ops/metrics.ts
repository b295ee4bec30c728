// Prometheus metrics (prom-client), one registry per process, served at GET /metrics. Every metric the
// service exports is declared here, so its names and labels are defined once.
import client from 'prom-client';
import type { SettledListener } from '../admission/index.js';
import type { ReplicaStatus } from '../../store/read-replica.js';

export type Metrics = ReturnType<typeof createMetrics>;

/** Read at scrape time; the composition root points them at the live objects. */
interface Probes {
  connections(): number;
  subscriptions(): number;
  dbPool(): { used: number; free: number; pending: number };
  redisUp(): number;
  /** The forwarder's attempts: sent and not yet answered, and answered but not yet recorded. */
  forwardInFlight(): { sending: number; recording: number };
  /** The read replica's state; undefined without one. */
  replica(): ReplicaStatus | undefined;
}

export function createMetrics() {
  const registry = new client.Registry();
  const probes: Probes = {
    connections: () => 0,
    subscriptions: () => 0,
    dbPool: () => ({ used: 0, free: 0, pending: 0 }),
    redisUp: () => -1,
    forwardInFlight: () => ({ sending: 0, recording: 0 }),
    replica: () => undefined,
  };
  client.collectDefaultMetrics({ register: registry, prefix: 'nostrx_process_' });
  const r = [registry];
  return {
    registry,
    probes,
    connections: new client.Gauge({
      name: 'nostrx_connections',
      help: 'Open WebSocket connections',
      registers: r,
      collect() {
        this.set(probes.connections());
      },
    }),
    subscriptions: new client.Gauge({
      name: 'nostrx_subscriptions',
      help: 'Open live subscriptions',
      registers: r,
      collect() {
        this.set(probes.subscriptions());
      },
    }),
    messages: new client.Counter({
      name: 'nostrx_messages_total',
      help: 'Client messages by type',
      labelNames: ['type'] as const,
      registers: r,
    }),
    events: new client.Counter({
      name: 'nostrx_events_total',
      help: 'Admission outcomes: accepted, duplicate, or rejected with the NIP-01 prefix as reason',
      labelNames: ['outcome', 'reason', 'via'] as const,
      registers: r,
    }),
    deadlineAnswers: new client.Counter({
      name: 'nostrx_deadline_answers_total',
      help: 'Answers given at their deadline (ANSWER_TIMEOUT_MS) because the work behind them had not finished: an EVENT answered error: (via relay or api), or an API request answered 503 (via http)',
      labelNames: ['via'] as const,
      registers: r,
    }),
    admissionSeconds: new client.Histogram({
      name: 'nostrx_admission_seconds',
      help: 'Time from receiving an EVENT to its answer',
      labelNames: ['outcome'] as const,
      // 7.5 and 15 ms beside 10: the steady target is a p99 of 10 ms, and a bucket edge is all a percentile can tell
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
    writeBatchSize: new client.Histogram({
      name: 'nostrx_write_batch_events',
      help: 'Events per group-commit transaction',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
      registers: r,
    }),
    writeBatchSeconds: new client.Histogram({
      name: 'nostrx_write_batch_seconds',
      help: 'Duration of a group-commit transaction',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: r,
    }),
    readStatementFilters: new client.Histogram({
      name: 'nostrx_read_statement_filters',
      help: 'REQ filters read by one statement (those that arrive together share one)',
      buckets: [1, 2, 4, 8],
      registers: r,
    }),
    readStatementSeconds: new client.Histogram({
      name: 'nostrx_read_statement_seconds',
      help: 'Duration of a statement reading stored events for REQ filters, by outcome (answered or failed)',
      labelNames: ['outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: r,
    }),
    quotaRejections: new client.Counter({
      name: 'nostrx_quota_rejections_total',
      help: 'Events refused for quota, by plan and period',
      labelNames: ['plan', 'period'] as const,
      registers: r,
    }),
    rateLimited: new client.Counter({
      name: 'nostrx_rate_limited_total',
      help: 'Messages refused by the per-IP or per-connection rate limit',
      labelNames: ['scope'] as const,
      registers: r,
    }),
    deliveries: new client.Counter({
      name: 'nostrx_deliveries_total',
      help: 'Events delivered to live subscriptions',
      registers: r,
    }),
    slowReadersDropped: new client.Counter({
      name: 'nostrx_slow_readers_dropped_total',
      help: 'Connections dropped for not reading fast enough',
      registers: r,
    }),
    forwardAttempts: new client.Counter({
      name: 'nostrx_forward_attempts_total',
      help: 'Forwarding attempts by outcome and upstream relay',
      labelNames: ['outcome', 'relay'] as const,
      registers: r,
    }),
    forwardSeconds: new client.Histogram({
      name: 'nostrx_forward_seconds',
      help: 'Time from sending an event upstream to its OK',
      labelNames: ['relay'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    forwardInFlight: new client.Gauge({
      name: 'nostrx_forward_in_flight',
      help: 'Forwarding attempts in this process: sent and awaiting the relay (sending), answered and awaiting their record (recording)',
      labelNames: ['stage'] as const,
      registers: r,
      collect() {
        const f = probes.forwardInFlight();
        this.set({ stage: 'sending' }, f.sending);
        this.set({ stage: 'recording' }, f.recording);
      },
    }),
    outboxDepth: new client.Gauge({
      name: 'nostrx_outbox_depth',
      help: 'Forwarding rows not yet finished',
      registers: r,
    }),
    outboxOldestSeconds: new client.Gauge({
      name: 'nostrx_outbox_oldest_seconds',
      help: 'Age of the oldest unfinished forwarding row',
      registers: r,
    }),
    dbPool: new client.Gauge({
      name: 'nostrx_db_pool',
      help: 'Database pool connections by state',
      labelNames: ['state'] as const,
      registers: r,
      collect() {
        const p = probes.dbPool();
        this.set({ state: 'used' }, p.used);
        this.set({ state: 'free' }, p.free);
        this.set({ state: 'pending' }, p.pending);
      },
    }),
    redisUp: new client.Gauge({
      name: 'nostrx_redis_up',
      help: '1 when Redis is connected, 0 when not, -1 when not configured',
      registers: r,
      collect() {
        this.set(probes.redisUp());
      },
    }),
    billingProviderErrors: new client.Counter({
      name: 'nostrx_billing_provider_errors_total',
      help: 'Failed requests to payment providers (after retries), by provider, operation and kind: unavailable (network, timeout, 5xx; nobody is downgraded) or rejected (4xx)',
      labelNames: ['provider', 'operation', 'kind'] as const,
      registers: r,
    }),
    billingSyncs: new client.Counter({
      name: 'nostrx_billing_syncs_total',
      help: 'Re-reads of linked provider accounts (ExtensionPay), by outcome: applied, unavailable, rejected, unmapped, unreadable',
      labelNames: ['provider', 'outcome'] as const,
      registers: r,
    }),
    billingWebhooks: new client.Counter({
      name: 'nostrx_billing_webhooks_total',
      help: 'Provider webhooks received, by provider and outcome: applied, duplicate, ignored, refused (bad signature)',
      labelNames: ['provider', 'outcome'] as const,
      registers: r,
    }),
    replicaUp: new client.Gauge({
      name: 'nostrx_db_replica_up',
      help: 'The read replica: 1 while reads go to it, 0 while they go to the primary (down, lagging or not yet checked), -1 when not configured',
      registers: r,
      collect() {
        const s = probes.replica();
        this.set(s ? Number(s.state === 'up') : -1);
      },
    }),
    replicaLag: new client.Gauge({
      name: 'nostrx_db_replica_lag_seconds',
      help: 'Seconds the read replica was behind the primary at its last check (NaN when unknown or not configured)',
      registers: r,
      collect() {
        this.set(probes.replica()?.lagSeconds ?? NaN);
      },
    }),
    dbReads: new client.Counter({
      name: 'nostrx_db_reads_total',
      help: 'Lag-tolerant reads (REQ, COUNT, reports, exports) by the server that ran them, and why the primary did when a replica is configured',
      labelNames: ['server', 'reason'] as const,
      registers: r,
    }),
    lightningInvoices: new client.Counter({
      name: 'nostrx_lightning_invoices_total',
      help: 'Lightning invoices by outcome: created, wallet_error (none made: the wallet could not be reached or refused), paid, paid_late (after its expiry), expired (unpaid)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    httpRequests: new client.Counter({
      name: 'nostrx_http_requests_total',
      help: 'HTTP API requests by route and status',
      labelNames: ['route', 'method', 'status'] as const,
      registers: r,
    }),
  };
}

/**
 * An admission listener (wired in app.ts): counts every outcome under its labels and times it. The labelled series
 * are looked up once per label set: prom-client hashes the label object at every call otherwise, which a flood of
 * refusals pays 20,000 times a second.
 */
export function countAdmissions(metrics: Pick<Metrics, 'events' | 'admissionSeconds'>): SettledListener {
  const counters = new Map<string, { inc(): void }>();
  const timers = new Map<string, { observe(seconds: number): void }>();
  const counterOf = (outcome: string, reason: string, via: string) => {
    const key = `${outcome}|${reason}|${via}`;
    let c = counters.get(key);
    if (!c) counters.set(key, (c = metrics.events.labels({ outcome, reason, via })));
    return c;
  };
  const timerOf = (outcome: string) => {
    let h = timers.get(outcome);
    if (!h) timers.set(outcome, (h = metrics.admissionSeconds.labels({ outcome })));
    return h;
  };
  return (outcome, ctx, seconds) => {
    const reason = outcome.status === 'rejected' ? outcome.rejection.prefix : '';
    counterOf(outcome.status, reason, ctx.via).inc();
    timerOf(outcome.status).observe(seconds);
  };
}
