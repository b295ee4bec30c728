// The Redis connection (optional: without REDIS_URL the service runs on Postgres alone).
import { Redis } from 'ioredis';

export type { Redis };

/**
 * Connects; `onError` hears of connection errors (its subscriber connection's too, see store/pubsub.ts). While
 * Redis is unreachable ioredis reports every reconnection attempt, a few a second: the same message is passed on at
 * most once per `quietMs`, with the number of repeats left out since.
 */
export async function openRedis(url: string, connectionName: string, onError: (err: Error, repeats: number) => void, quietMs = 30_000): Promise<Redis> {
  // Auto-pipelining: the commands issued in one turn of the event loop (a quota reservation and a fan-out PUBLISH
  // per event, under load hundreds a turn) leave in one write instead of one syscall each.
  const redis = new Redis(url, { lazyConnect: true, connectionName, maxRetriesPerRequest: 2, enableOfflineQueue: true, enableAutoPipelining: true });
  redis.on('error', quieted(onError, quietMs));
  await redis.connect();
  return redis;
}

function quieted(report: (err: Error, repeats: number) => void, quietMs: number): (err: Error) => void {
  let last = '';
  let at = -Infinity;
  let repeats = 0;
  return (err) => {
    const now = Date.now();
    if (err.message === last && now - at < quietMs) {
      repeats += 1;
      return;
    }
    report(err, repeats);
    last = err.message;
    at = now;
    repeats = 0;
  };
}
