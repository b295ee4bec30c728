// The Redis connection (optional: without REDIS_URL the service runs on Postgres alone).
import { Redis } from 'ioredis';

export type { Redis };

export async function openRedis(url: string, connectionName: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, connectionName, maxRetriesPerRequest: 2, enableOfflineQueue: true });
  await redis.connect();
  return redis;
}
