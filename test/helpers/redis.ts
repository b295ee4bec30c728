// Tests share the machine's Redis (TEST_REDIS_URL, default redis://127.0.0.1:6379); each test file gets its
// own key prefix, and its keys are removed at teardown.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export function testRedisPrefix(t: Teardown): string {
  const prefix = `nostrx_t:${process.pid}:${randomBytes(4).toString('hex')}:`;
  t.teardown(async () => {
    const r = new Redis(testRedisUrl, { lazyConnect: true });
    await r.connect();
    await deletePrefix(r, prefix);
    r.disconnect();
  });
  return prefix;
}

/** Deletes every key under `prefix` and returns how many (never FLUSHALL/FLUSHDB: other tests share the server). */
export async function deletePrefix(r: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) n += await r.del(...keys);
  } while (cursor !== '0');
  return n;
}
