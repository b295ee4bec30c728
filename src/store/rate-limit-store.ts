// Token buckets for message rate limits: `take` removes up to n tokens from a bucket that refills at `rate` per
// second up to `burst`, and says how many it removed. In Redis (one Lua call, Redis's own clock, shared by every
// process) or in this process's memory.
import type { Redis } from 'ioredis';
import { createTtlMap, type TtlMap } from '../lib/ttl-map.js';
import { luaScript } from './lua.js';

export interface TokenBuckets {
  take(key: string, ratePerSecond: number, burst: number, n: number): Promise<number>;
}

const takeLua = luaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
local got = math.min(want, math.floor(tokens))
tokens = tokens - got
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return got
`);

export function redisTokenBuckets(redis: Redis, prefix: string): TokenBuckets {
  return {
    async take(key, rate, burst, n) {
      return Number(await takeLua.run(redis, [`${prefix}rl:${key}`], [rate, burst, n]));
    },
  };
}

interface Bucket {
  tokens: number;
  at: number;
}

export function memoryTokenBuckets(now: () => number = () => performance.now(), max = 200_000): TokenBuckets {
  // An idle bucket refills to full, and a full bucket is the same as no bucket: entries may be dropped once
  // idle or when the map is full. A TtlMap, not an LRUCache: one client's relay empties it at each quiet spell.
  const buckets = createTtlMap<string, Bucket>({ max, ttlMs: 600_000, touch: true });
  return {
    async take(key, rate, burst, n) {
      return takeSync(buckets, key, rate, burst, n, now());
    },
  };
}

export function takeSync(
  buckets: TtlMap<string, Bucket>,
  key: string,
  rate: number,
  burst: number,
  n: number,
  t: number,
): number {
  let b = buckets.get(key);
  if (!b) {
    b = { tokens: burst, at: t };
    buckets.set(key, b);
  } else if (t > b.at) {
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) * rate) / 1000);
    b.at = t;
  }
  const got = Math.min(n, Math.floor(b.tokens));
  b.tokens -= got;
  return got;
}
