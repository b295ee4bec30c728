// The forwarder: works off the relay_publishes outbox. One loop per process claims due rows in batches (FOR UPDATE
// SKIP LOCKED, a lease per row; see store/outbox.ts), sends each event to its relay over the upstream pool, and
// records every attempt with its timings and the relay's answer. Transient failures are retried with exponential
// backoff and jitter; a relay's refusal is final. Woken right after an admission commits (wake), by its own retry
// timer, and by a poll interval, so rows written by other processes or left by a crashed one are found too.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Knex } from 'knex';
import type { Config } from '../../config.js';
import { quietly } from '../../lib/quiet.js';
import type { Logger } from '../../log.js';
import { parseRelayUrl } from '../../nips/relay-url.js';
import { claimDue, outboxBacklog, releaseClaims, type ClaimedPublish } from '../../store/outbox.js';
import { saveRelayInfo } from '../../store/relay-stats.js';
import type { SettledListener } from '../admission/index.js';
import { createAttemptRecorder } from './attempt-recorder.js';
import { classify, type Decision, type RetryPolicy } from './policy.js';
import type { Metrics } from '../ops/index.js';
import { createUpstreamPool, type UpstreamPool } from './upstream-pool.js';

type ForwarderConfig = Pick<
  Config,
  | 'forwardConcurrency'
  | 'forwardRelayConcurrency'
  | 'forwardBatchSize'
  | 'forwardPollMs'
  | 'forwardTimeoutMs'
  | 'forwardMaxAttempts'
  | 'forwardMaxAgeSeconds'
  | 'forwardBackoffBaseMs'
  | 'forwardBackoffMaxMs'
  | 'forwardCircuitFailures'
  | 'forwardCircuitPauseMs'
  | 'upstreamRelays'
  | 'allowPrivateRelays'
>;

export interface ForwarderDeps {
  readonly db: Knex;
  readonly config: ForwarderConfig;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'forwardAttempts' | 'forwardSeconds' | 'outboxDepth' | 'outboxOldestSeconds'>;
  /** Injectable for tests; default createUpstreamPool with the config's limits. */
  readonly pool?: UpstreamPool;
  readonly workerId?: string;
}

export interface Forwarder {
  readonly workerId: string;
  readonly pool: UpstreamPool;
  start(): void;
  /** Look for due rows now (coalesced: many calls in one tick make one claim). */
  wake(): void;
  /** Stops claiming, lets attempts in flight finish for a bounded time, then interrupts and records the rest. */
  stop(): Promise<void>;
  /** Attempts in flight in this process: sent and not yet answered (holding a slot), answered and not yet recorded. */
  inFlight(): { sending: number; recording: number };
}

export function createForwarder(deps: ForwarderDeps): Forwarder {
  const { db, config } = deps;
  const log = deps.log.child({ mod: 'forwarder' });
  const workerId = deps.workerId ?? `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const trusted = new Set(
    config.upstreamRelays.map((u) => parseRelayUrl(u)).flatMap((p) => (p.ok ? [p.value.url] : [])),
  );
  const policy: RetryPolicy = {
    maxAttempts: config.forwardMaxAttempts,
    maxAgeSeconds: config.forwardMaxAgeSeconds,
    backoffBaseMs: config.forwardBackoffBaseMs,
    backoffMaxMs: config.forwardBackoffMaxMs,
  };
  // An attempt waits at most a timeout for a connection and another for the OK; the lease covers both plus slack.
  const leaseMs = 2 * config.forwardTimeoutMs + Math.max(1000, config.forwardTimeoutMs);
  // On stop, answers in flight get half a timeout (at most 3 s) to arrive before their attempts are interrupted.
  const stopGraceMs = Math.min(Math.round(config.forwardTimeoutMs / 2), 3000);

  const pool =
    deps.pool ??
    createUpstreamPool({
      log: deps.log,
      timeoutMs: config.forwardTimeoutMs,
      backoffBaseMs: config.forwardBackoffBaseMs,
      backoffMaxMs: config.forwardBackoffMaxMs,
      circuitFailures: config.forwardCircuitFailures,
      circuitPauseMs: config.forwardCircuitPauseMs,
      policy: { allowPrivate: config.allowPrivateRelays },
      trusted,
      onInfo: (url, info) => {
        saveRelayInfo(db, url, info.info, info.supportedNips).catch((err: unknown) =>
          log.warn({ err, relay: url }, 'could not store a NIP-11 document'),
        );
      },
    });

  // An outcome the database cannot take yet is retried while the row's lease holds (claimed at most leaseMs ago).
  const recorder = createAttemptRecorder({ db, workerId, log, pool, outageRetryMs: leaseMs });
  // A slot (FORWARD_CONCURRENCY, FORWARD_RELAY_CONCURRENCY) is held while an event is on its way to a relay and
  // given back when the relay has answered: recording the outcome (a group commit) then goes on without it, so a
  // slot turns over at the relay's pace, not at the database's. What is answered and not yet recorded is bounded
  // on its own: past it, nothing new is claimed until the recorder catches up.
  const maxUnrecorded = 4 * config.forwardConcurrency;
  const active = new Map<string, number>(); // events on their way to each relay URL
  let sending = 0;
  const inflight = new Set<Promise<void>>(); // attempts not yet recorded, sending or not
  let started = false;
  let stopping = false;
  let pumping: Promise<void> | null = null;
  let again = false;
  let wakeQueued = false;
  let lastClaimFull = true; // until a claim says otherwise, assume a backlog (one left by a stopped process)
  let retryTimer: NodeJS.Timeout | null = null;
  const retryTimes: number[] = []; // due times of retries scheduled here, ascending
  const timers: NodeJS.Timeout[] = [];

  const relayLabel = (url: string) => (trusted.has(url) ? url : 'custom');

  function wake(): void {
    if (!started || stopping || wakeQueued) return;
    wakeQueued = true;
    setImmediate(() => {
      wakeQueued = false;
      void pump();
    });
  }

  /** Wakes the loop when a retry this process scheduled falls due (the poll interval covers what is dropped here). */
  function wakeAt(ms: number): void {
    const at = Date.now() + ms;
    if (retryTimes.length >= 10_000 || retryTimes.some((t) => Math.abs(t - at) < 5)) return;
    let i = retryTimes.length;
    while (i > 0 && (retryTimes[i - 1] ?? 0) > at) i--;
    retryTimes.splice(i, 0, at);
    armRetryTimer();
  }

  function armRetryTimer(): void {
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    const next = retryTimes[0];
    if (next === undefined || stopping) return;
    retryTimer = setTimeout(
      () => {
        retryTimer = null;
        const now = Date.now();
        while ((retryTimes[0] ?? Infinity) <= now + 1) retryTimes.shift();
        wake();
        armRetryTimer();
      },
      Math.max(0, next - Date.now()),
    );
    retryTimer.unref();
  }

  function relayCap(url: string): number {
    return pool.breaker(url).halfOpen ? 1 : config.forwardRelayConcurrency;
  }

  function excluded(): string[] {
    const out = new Set(pool.pausedUrls());
    for (const [url, n] of active) if (n >= relayCap(url)) out.add(url);
    return [...out];
  }

  // While the database is away every poll fails the same way: logged once per half minute, with the repeats counted.
  let claimError: unknown;
  const claimFailedQuietly = quietly((_message, repeats) =>
    log.error({ err: claimError, repeats }, 'claiming outbox rows failed'),
  );
  function claimFailed(err: unknown): void {
    claimError = err;
    claimFailedQuietly(err instanceof Error ? err.message : String(err));
  }

  function pump(): Promise<void> {
    if (pumping) {
      again = true;
      return pumping;
    }
    // Cleared in a .finally callback, which always runs after this assignment (the loop may end synchronously).
    const p = claimLoop().finally(() => {
      if (pumping === p) pumping = null;
    });
    pumping = p;
    return p;
  }

  async function claimLoop(): Promise<void> {
    try {
      do {
        again = false;
        if (stopping) break;
        const free = Math.min(config.forwardConcurrency - sending, maxUnrecorded - inflight.size);
        if (free <= 0) break;
        const limit = Math.min(config.forwardBatchSize, free);
        const rows = await claimDue(db, {
          workerId,
          limit,
          leaseMs,
          excludeUrls: excluded(),
          maxAgeSeconds: config.forwardMaxAgeSeconds,
          backlog: lastClaimFull,
        });
        lastClaimFull = rows.length === limit;
        const release: ClaimedPublish[] = [];
        for (const row of rows) {
          if (stopping) release.push(row);
          else if (!dispatch(row)) release.push(row);
        }
        if (release.length > 0) {
          await releaseClaims(
            db,
            workerId,
            release.map((r) => ({ id: r.id, createdAt: r.createdAt, attempt: r.attempt })),
          );
        }
        if (lastClaimFull && release.length < rows.length) again = true;
      } while (again && !stopping);
    } catch (err) {
      claimFailed(err);
    }
  }

  /** The outcome of a claimed row that is not sent at all: its event was removed, or it is too old to deliver. */
  function unsentOutcome(row: ClaimedPublish): Decision | undefined {
    if (row.removedReason !== null) {
      return {
        status: 'failed',
        outcome: 'not_forwarded',
        errorCode: 'event_removed',
        errorMessage: `the event was ${row.removedReason} before it was forwarded`,
        health: 'none',
      };
    }
    if (row.ageSeconds <= config.forwardMaxAgeSeconds) return undefined;
    const timedOut = row.lastErrorCode === 'timeout' || row.lastErrorCode === 'connect_timeout';
    return {
      status: timedOut ? 'timeout' : 'failed',
      outcome: 'expired',
      errorCode: 'expired',
      errorMessage: `not delivered within FORWARD_MAX_AGE_SECONDS (${config.forwardMaxAgeSeconds} s)`,
      health: 'none',
    };
  }

  /** Keeps an attempt in `inflight` (bounded by maxUnrecorded) until its outcome is recorded. */
  function track(row: ClaimedPublish, work: Promise<void>, done: () => void = () => {}): void {
    const p: Promise<void> = work
      .catch((err: unknown) => log.error({ err, relay: row.url, row: row.id }, 'a forwarding attempt failed'))
      .finally(() => {
        inflight.delete(p);
        done();
        if (lastClaimFull) wake();
      });
    inflight.add(p);
  }

  /**
   * Starts the attempt for a claimed row; false when its relay is paused or at its cap (the row is released). A row
   * that is not sent takes no slot: only its outcome is recorded.
   */
  function dispatch(row: ClaimedPublish): boolean {
    const unsent = unsentOutcome(row);
    if (unsent) {
      track(row, recorder.record({ row, decision: unsent, report: null, startedAt: new Date(), pausedUntil: null }));
      return true;
    }
    if (pool.breaker(row.url).paused || (active.get(row.url) ?? 0) >= relayCap(row.url)) return false;
    active.set(row.url, (active.get(row.url) ?? 0) + 1);
    sending += 1;
    let held = true;
    const freeSlot = () => {
      if (!held) return;
      held = false;
      sending -= 1;
      const n = (active.get(row.url) ?? 1) - 1;
      if (n <= 0) active.delete(row.url);
      else active.set(row.url, n);
      if (lastClaimFull) wake();
    };
    track(row, attempt(row, freeSlot), freeSlot);
    return true;
  }

  /** Sends one claimed row and records the outcome; freeSlot is called once the relay has answered (or could not). */
  async function attempt(row: ClaimedPublish, freeSlot: () => void): Promise<void> {
    const startedAt = new Date();
    const report = await pool.publish(row.url, row.event);
    freeSlot();
    const decision = classify(report, row, policy);
    let pausedUntil: Date | null = null;
    if (decision.health !== 'none') pausedUntil = pool.reportHealth(row.url, decision.health);
    if (pausedUntil)
      log.warn(
        { relay: row.url, until: pausedUntil.toISOString() },
        'upstream relay paused after consecutive failures',
      );
    deps.metrics?.forwardAttempts.inc({ outcome: decision.outcome, relay: relayLabel(row.url) });
    if (report.result.kind === 'answered' && report.publishMs !== null)
      deps.metrics?.forwardSeconds.observe({ relay: relayLabel(row.url) }, report.publishMs / 1000);
    await recorder.record({ row, decision, report, startedAt, pausedUntil });
    if (decision.status === 'pending' && decision.retryInMs !== undefined) wakeAt(decision.retryInMs);
  }

  async function refreshBacklog(): Promise<void> {
    if (!deps.metrics) return;
    try {
      const b = await outboxBacklog(db);
      deps.metrics.outboxDepth.set(b.depth);
      deps.metrics.outboxOldestSeconds.set(b.oldestSeconds);
    } catch (err) {
      log.warn({ err }, 'could not measure the outbox backlog');
    }
  }

  return {
    workerId,
    pool,
    start() {
      if (started) return;
      started = true;
      const poll = setInterval(() => void pump(), config.forwardPollMs);
      const backlog = setInterval(() => void refreshBacklog(), Math.max(15_000, config.forwardPollMs));
      poll.unref();
      backlog.unref();
      timers.push(poll, backlog);
      wake();
    },
    wake,
    inFlight: () => ({ sending, recording: inflight.size - sending }),
    async stop() {
      if (stopping) return;
      stopping = true;
      for (const t of timers) clearInterval(t);
      if (retryTimer) clearTimeout(retryTimer);
      if (pumping) await pumping;
      const settled = Promise.allSettled([...inflight]);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([settled, new Promise((r) => (timer = setTimeout(r, stopGraceMs)))]);
      clearTimeout(timer);
      // What is still in flight now is interrupted: each attempt records 'interrupted' and its row is due again at once.
      await pool.close();
      await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => setTimeout(r, 5000).unref())]);
    },
  };
}

/** An admission listener (wired in app.ts): wakes the forwarder as soon as an event with outbox rows has committed. */
export function wakeOnQueued(forwarder: Pick<Forwarder, 'wake'>): SettledListener {
  return (outcome) => {
    if (outcome.status === 'accepted' && outcome.queued) forwarder.wake();
  };
}
