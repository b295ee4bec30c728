// The Redis connection (optional: without REDIS_URL the service runs on Postgres alone).
import { Redis } from 'ioredis';
import { quietly } from '../lib/quiet.js';

export type { Redis };

/**
 * Waits bounded by `timeoutMs`: a command with no answer in time fails (its caller degrades, see core/quota.ts and
 * core/rate-limits.ts), and a connection silent twice as long while a command waits is taken as dead (a half-open
 * connection: the server vanished without closing it) and opened again.
 */
function bounds(timeoutMs: number | undefined): {
  commandTimeout?: number;
  socketTimeout?: number;
  connectTimeout?: number;
} {
  if (timeoutMs === undefined) return {};
  return { commandTimeout: timeoutMs, socketTimeout: 2 * timeoutMs, connectTimeout: 2 * timeoutMs };
}

/**
 * Connects; `onError` hears of connection errors (its subscriber connection's too, see store/pubsub.ts). While
 * Redis is unreachable ioredis reports every reconnection attempt, a few a second: the same message is passed on at
 * most once per `quietMs`, with the number of repeats left out since.
 */
export async function openRedis(
  url: string,
  connectionName: string,
  onError: (err: Error, repeats: number) => void,
  opts: { quietMs?: number; timeoutMs?: number } = {},
): Promise<Redis> {
  // Auto-pipelining: the commands issued in one turn of the event loop (a quota reservation and a fan-out PUBLISH
  // per event, under load hundreds a turn) leave in one write instead of one syscall each.
  const redis = new Redis(url, {
    lazyConnect: true,
    connectionName,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    enableAutoPipelining: true,
    ...bounds(opts.timeoutMs),
  });
  const report = quietly((_message, repeats) => onError(latest, repeats), opts.quietMs ?? 30_000);
  let latest = new Error('');
  redis.on('error', (err: Error) => {
    latest = err;
    report(err.message);
  });
  await redis.connect();
  return redis;
}
