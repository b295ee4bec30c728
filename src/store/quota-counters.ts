// Live quota counters: a fast, shared view of each user's count, so that a user at the limit is refused without a
// database transaction. They are never the arbiter (the user_quotas ledger is, see store/quotas.ts); they only
// have to be right often, and wrong only on the side that Postgres then corrects.
//
// Per user and period there are two keys:
//   <prefix>quota:{<user>}:<period>     hash, field u = posts committed, as last reported by Postgres
//   <prefix>quota:{<user>}:<period>:h   sorted set of holds: one member per post between its check and its
//                                       commit, scored by the instant (ms, Redis clock) the hold lapses
// A check refuses when u + holds >= cap, else adds a hold: one Lua call for every period at once. After the
// transaction the hold is removed and u raised to the count Postgres returned (never lowered: counts only grow
// within a period). So:
// - a failed, duplicate or superseded post gives its hold back, and a crashed process's holds lapse by themselves;
// - u is always a count Postgres has committed, so `u >= cap` is a fact (the caller may remember it until the
//   reset), while a refusal caused by holds is only "the rest of the quota is being used right now";
// - keys lost from Redis (flush, eviction, failover) are rebuilt from the ledger: the check answers `missing`,
//   the caller reads user_quotas and checks again with those seeds. Holds lost with them only let more posts
//   reach Postgres, which refuses the excess.
// - a post stored without a hold (a new author's only post in flight, core/quota/tier-quota.ts) reports its count
//   with `record`, which makes the counter if there is none, so that the author's next post finds it.
// Keys carry the user in {braces} (one Redis Cluster slot per user) and expire a day after the period resets.
import type { Redis } from 'ioredis';
import { luaScript } from './lua.js';

export interface CounterPeriod {
  /** Period id, e.g. `d:2026-11-25` or `m:2026-11-01`. */
  readonly key: string;
  /** -1 = unlimited (never refused; still held, so that counts stay live). */
  readonly cap: number;
  readonly ttlSeconds: number;
}

export type ReserveResult =
  | { readonly status: 'held' }
  /** A counter is not in the store: read the ledger and call again with seeds. */
  | { readonly status: 'missing' }
  /** Refused at periods[index]: u committed posts plus `held` posts in flight reach the cap. */
  | { readonly status: 'full'; readonly index: number; readonly used: number; readonly held: number };

export interface QuotaCounters {
  /** Checks every period and, only if all have room, adds one hold to each. `seeds[i]` rebuilds a missing counter. */
  reserve(
    userId: string,
    periods: readonly CounterPeriod[],
    token: string,
    seeds?: readonly number[],
  ): Promise<ReserveResult>;
  /** Removes the hold and raises u to the committed count Postgres reported, where one is known. */
  settle(
    userId: string,
    periodKeys: readonly string[],
    token: string,
    committed: readonly (number | undefined)[],
  ): Promise<void>;
  /** Raises u to the committed count Postgres reported (`committed[i]` for `periods[i]`), making a missing counter. */
  record(userId: string, periods: readonly CounterPeriod[], committed: readonly number[]): Promise<void>;
}

const DEFAULT_HOLD_MS = 30_000;

const reserveLua = luaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holdMs = tonumber(ARGV[1])
local n = #KEYS / 2
for i = 1, n do
  local c, h = KEYS[2 * i - 1], KEYS[2 * i]
  local cap = tonumber(ARGV[3 * i])
  local ttl = tonumber(ARGV[3 * i + 1])
  local seed = ARGV[3 * i + 2]
  local u = redis.call('HGET', c, 'u')
  if not u then
    if seed == '' then return {-1} end
    redis.call('HSET', c, 'u', seed)
    redis.call('EXPIRE', c, ttl)
    u = seed
  end
  u = tonumber(u)
  redis.call('ZREMRANGEBYSCORE', h, '-inf', now)
  local held = redis.call('ZCARD', h)
  if cap >= 0 and u + held >= cap then return {0, i, u, held} end
end
for i = 1, n do
  redis.call('ZADD', KEYS[2 * i], now + holdMs, ARGV[2])
  redis.call('EXPIRE', KEYS[2 * i], tonumber(ARGV[3 * i + 1]))
end
return {1}
`);

const settleLua = luaScript(`
for i = 1, #KEYS / 2 do
  redis.call('ZREM', KEYS[2 * i], ARGV[1])
  local seen = ARGV[i + 1]
  if seen ~= '' then
    local u = redis.call('HGET', KEYS[2 * i - 1], 'u')
    if u and tonumber(seen) > tonumber(u) then redis.call('HSET', KEYS[2 * i - 1], 'u', seen) end
  end
end
return 1
`);

const recordLua = luaScript(`
for i = 1, #KEYS do
  local seen = tonumber(ARGV[2 * i - 1])
  local u = redis.call('HGET', KEYS[i], 'u')
  if not u then
    redis.call('HSET', KEYS[i], 'u', seen)
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 * i]))
  elseif seen > tonumber(u) then
    redis.call('HSET', KEYS[i], 'u', seen)
  end
end
return 1
`);

function keyPair(prefix: string, userId: string, periodKey: string): [string, string] {
  const c = `${prefix}quota:{${userId}}:${periodKey}`;
  return [c, `${c}:h`];
}

export function redisQuotaCounters(redis: Redis, prefix: string, holdMs = DEFAULT_HOLD_MS): QuotaCounters {
  return {
    async reserve(userId, periods, token, seeds) {
      const keys = periods.flatMap((p) => keyPair(prefix, userId, p.key));
      const args: (string | number)[] = [holdMs, token];
      periods.forEach((p, i) => args.push(p.cap, p.ttlSeconds, seeds?.[i] ?? ''));
      const r = (await reserveLua.run(redis, keys, args)) as number[];
      if (r[0] === 1) return { status: 'held' };
      if (r[0] === -1) return { status: 'missing' };
      return { status: 'full', index: Number(r[1]) - 1, used: Number(r[2]), held: Number(r[3]) };
    },
    async settle(userId, periodKeys, token, committed) {
      const keys = periodKeys.flatMap((k) => keyPair(prefix, userId, k));
      await settleLua.run(redis, keys, [token, ...periodKeys.map((_, i) => committed[i] ?? '')]);
    },
    async record(userId, periods, committed) {
      const keys = periods.map((p) => keyPair(prefix, userId, p.key)[0]);
      await recordLua.run(
        redis,
        keys,
        periods.flatMap((p, i) => [committed[i]!, p.ttlSeconds]),
      );
    },
  };
}

interface MemoryCounter {
  used: number;
  holds: Map<string, number>;
  expiresAt: number;
}

/**
 * The same semantics in this process's memory, for running without Redis. The ledger still arbitrates; with
 * several processes and no Redis each one simply knows less, and Postgres refuses what they let through.
 */
export function memoryQuotaCounters(holdMs = DEFAULT_HOLD_MS, now: () => number = Date.now): QuotaCounters {
  const counters = new Map<string, MemoryCounter>();
  let lastSweep = 0;
  const sweep = (t: number): void => {
    if (t - lastSweep < 60_000) return;
    lastSweep = t;
    for (const [k, c] of counters) if (c.expiresAt <= t) counters.delete(k);
  };
  return {
    async reserve(userId, periods, token, seeds) {
      const t = now();
      sweep(t);
      const found: MemoryCounter[] = [];
      for (const [i, p] of periods.entries()) {
        const key = `${userId}:${p.key}`;
        let c = counters.get(key);
        if (!c || c.expiresAt <= t) {
          const seed = seeds?.[i];
          if (seed === undefined) return { status: 'missing' };
          c = { used: seed, holds: new Map(), expiresAt: t + p.ttlSeconds * 1000 };
          counters.set(key, c);
        }
        for (const [tok, until] of c.holds) if (until <= t) c.holds.delete(tok);
        if (p.cap >= 0 && c.used + c.holds.size >= p.cap)
          return { status: 'full', index: i, used: c.used, held: c.holds.size };
        found.push(c);
      }
      for (const c of found) c.holds.set(token, t + holdMs);
      return { status: 'held' };
    },
    async settle(userId, periodKeys, token, committed) {
      periodKeys.forEach((k, i) => {
        const c = counters.get(`${userId}:${k}`);
        if (!c) return;
        c.holds.delete(token);
        const seen = committed[i];
        if (seen !== undefined && seen > c.used) c.used = seen;
      });
    },
    async record(userId, periods, committed) {
      const t = now();
      periods.forEach((p, i) => {
        const key = `${userId}:${p.key}`;
        const c = counters.get(key);
        const seen = committed[i]!;
        if (!c || c.expiresAt <= t)
          counters.set(key, { used: seen, holds: new Map(), expiresAt: t + p.ttlSeconds * 1000 });
        else if (seen > c.used) c.used = seen;
      });
    },
  };
}
