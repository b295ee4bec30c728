// "Seen once" keys with a lifetime: the storage of the NIP-98 replay cache (and of anything else that must accept
// a token only once). In Redis (`SET key 1 NX EX ttl`, atomic across processes) when configured, else in the
// process memory.
import { LRUCache } from 'lru-cache';
import type { Redis } from './redis.js';

export interface SeenOnce {
  /** True the first time `key` is offered within `ttlSeconds`; false for every repeat while it is remembered. */
  firstSeen(key: string, ttlSeconds: number): Promise<boolean>;
}

export function redisSeenOnce(redis: Redis, prefix: string): SeenOnce {
  return {
    async firstSeen(key, ttlSeconds) {
      const answer = await redis.set(`${prefix}${key}`, '1', 'EX', ttlSeconds, 'NX');
      return answer === 'OK';
    },
  };
}

/**
 * In-memory fallback for a single process. Bounded so a flood cannot exhaust memory; once full, the oldest keys
 * are forgotten first, which only matters if more than `max` tokens arrive within one window.
 */
export function memorySeenOnce(max = 500_000): SeenOnce {
  const seen = new LRUCache<string, true>({ max, ttlAutopurge: false });
  return {
    async firstSeen(key, ttlSeconds) {
      if (seen.has(key)) return false;
      seen.set(key, true, { ttl: ttlSeconds * 1000 });
      return true;
    },
  };
}
