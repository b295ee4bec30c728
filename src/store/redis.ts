// The Redis connection (optional: without REDIS_URL the service runs on Postgres alone).
import { Redis } from 'ioredis';

export type { Redis };

export async function openRedis(url: string, connectionName: string): Promise<Redis> {
  // Auto-pipelining: the commands issued in one turn of the event loop (a quota reservation and a fan-out PUBLISH
  // per event, under load hundreds a turn) leave in one write instead of one syscall each.
  const redis = new Redis(url, { lazyConnect: true, connectionName, maxRetriesPerRequest: 2, enableOfflineQueue: true, enableAutoPipelining: true });
  await redis.connect();
  return redis;
}
