// Message rate limits: a token bucket per connection (in memory: a connection lives in one process) and one per
// client IP (in Redis when configured, shared by every process, else in memory). A message over either limit is
// answered `rate-limited: …` and not handled; nobody waits, so a noisy client never slows the others.
//
// With Redis, a process takes the IP's tokens a few at a time (a lease of 1/20 of the smaller of rate and burst)
// and spends them locally, so a busy IP costs one Redis call per lease, not per message. Small limits (as in
// tests) give a lease of 1: one call per message, exact. If Redis fails, messages are let through (and logged):
// a rate limit is a protection, not a reason to refuse service; for a second after a failure Redis is not asked at
// all, so that an unreachable Redis costs no message a wait.
import { createTtlMap } from '../../lib/ttl-map.js';
import type { Logger } from '../../log.js';
import { rejection, type Rejection } from '../../nips/result.js';
import { takeSync, type TokenBuckets } from '../../store/rate-limit-store.js';

export interface RateLimitSettings {
  /** Messages per second per IP address; 0 = no limit. */
  readonly ipPerSecond: number;
  readonly ipBurst: number;
  /** Messages per second per connection; 0 = no limit. */
  readonly connPerSecond: number;
  readonly connBurst: number;
}

/** After the shared store fails, messages pass without asking it for this long; then it is asked again. */
const STORE_RETRY_MS = 1000;

type RateLimitScope = 'ip' | 'connection';

export interface RateLimitDeps {
  readonly settings: RateLimitSettings;
  /** Buckets of the per-IP limit (store/rate-limit-store.ts). */
  readonly ipBuckets: TokenBuckets;
  /** True when ipBuckets is shared by several processes (Redis): take tokens in leases. */
  readonly shared: boolean;
  readonly log: Logger;
  readonly onLimited?: (scope: RateLimitScope) => void;
}

export interface RateLimits {
  /** Both limits, for one relay message. */
  check(ip: string, connId: string): Promise<Rejection | undefined>;
  /** The per-IP limit alone (HTTP requests). */
  checkIp(ip: string): Promise<Rejection | undefined>;
}

type Bucket = { tokens: number; at: number };

export function createRateLimits(deps: RateLimitDeps): RateLimits {
  const s = deps.settings;
  // TtlMaps, not LRUCaches (lib/ttl-map.ts): on a quiet relay both empty, the leases every 10 s.
  const connBuckets = createTtlMap<string, Bucket>({ max: 500_000, ttlMs: 600_000, touch: true });
  const leased = createTtlMap<string, number>({ max: 200_000, ttlMs: 10_000 });
  const lease = deps.shared ? Math.max(1, Math.floor(Math.min(s.ipPerSecond, s.ipBurst) / 20)) : 1;
  const connRefusal = rejection(
    'rate-limited',
    `slow down: this connection may send ${s.connPerSecond} messages per second (bursts of ${s.connBurst})`,
  );
  const ipRefusal = rejection(
    'rate-limited',
    `slow down: your IP address may send ${s.ipPerSecond} messages per second (bursts of ${s.ipBurst})`,
  );
  let lastError = 0;
  let storeDownUntil = 0;

  // One lease request per IP at a time: concurrent messages wait for it instead of each taking a lease, which
  // would drain the shared bucket for messages that were never sent.
  const leasing = new Map<string, Promise<number>>();

  function fromPool(ip: string): boolean {
    const pool = leased.get(ip) ?? 0;
    if (pool <= 0) return false;
    leased.set(ip, pool - 1);
    return true;
  }

  async function checkIp(ip: string): Promise<Rejection | undefined> {
    if (s.ipPerSecond <= 0) return undefined;
    while (!fromPool(ip)) {
      // The store just failed: not asked again for a moment (each ask would wait for its timeout, one after the
      // other for the messages of one IP).
      if (performance.now() < storeDownUntil) return undefined;
      const waiting = leasing.get(ip);
      if (waiting) {
        const got = await waiting;
        if (got === Number.POSITIVE_INFINITY) return undefined;
        if (got <= 0) return refuseIp();
        continue;
      }
      const request = deps.ipBuckets.take(`ip:${ip}`, s.ipPerSecond, s.ipBurst, lease).then(
        (got) => {
          if (got > 0) leased.set(ip, (leased.get(ip) ?? 0) + got);
          return got;
        },
        (err: unknown) => {
          storeDownUntil = performance.now() + STORE_RETRY_MS;
          if (Date.now() - lastError > 10_000) {
            lastError = Date.now();
            deps.log.warn({ err }, 'rate-limit store unavailable; per-IP limits are not enforced meanwhile');
          }
          return Number.POSITIVE_INFINITY; // not enforced while the store is down
        },
      );
      leasing.set(ip, request);
      const got = await request.finally(() => leasing.delete(ip));
      if (got === Number.POSITIVE_INFINITY) return undefined;
      if (got <= 0) return refuseIp();
    }
    return undefined;
  }

  function refuseIp(): Rejection {
    deps.onLimited?.('ip');
    return ipRefusal;
  }

  return {
    async check(ip, connId) {
      if (
        s.connPerSecond > 0 &&
        takeSync(connBuckets, connId, s.connPerSecond, s.connBurst, 1, performance.now()) === 0
      ) {
        deps.onLimited?.('connection');
        return connRefusal;
      }
      return checkIp(ip);
    },
    checkIp,
  };
}
