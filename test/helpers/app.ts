// Starts the whole service on a loopback port against a fresh test database, with nostr-tools set up to use
// the `ws` client (Node 20 has no global WebSocket). Stopped at teardown.
import { WebSocket } from 'ws';
import { useWebSocketImplementation as useRelayWs } from 'nostr-tools/relay';
import { useWebSocketImplementation as usePoolWs } from 'nostr-tools/pool';
import { loadConfig } from '../../src/config.js';
import { patientLimits } from './limits.js';
import { startApp, type App } from '../../src/app.js';
import type { Logger } from '../../src/log.js';
import { createTestDatabaseUrl } from './db.js';
import { testRedisPrefix, testRedisUrl } from './redis.js';

useRelayWs(WebSocket);
usePoolWs(WebSocket);

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface TestAppOptions {
  /** Extra environment (config keys) for this instance. */
  env?: Record<string, string>;
  /** Use this database instead of a fresh one (several instances on one database). */
  databaseUrl?: string;
  /** Give the instance Redis (with a key prefix of this test file's own). */
  redis?: boolean | string;
  now?: () => number;
  /** The service's logger (default: one at TEST_LOG_LEVEL, silent). */
  log?: Logger;
  /**
   * Plan limits to set in this database before the test runs, e.g. `{ basic: { daily: -1 } }` for tests about
   * something other than quotas that publish more than 3 notes with one key. Quotas stay on (the path runs).
   */
  plans?: Record<string, { daily?: number; monthly?: number | null }>;
}

export async function startTestApp(t: Teardown, opts: TestAppOptions = {}): Promise<App> {
  const databaseUrl = opts.databaseUrl ?? (await createTestDatabaseUrl(t));
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    VERIFY_THREADS: '1', // the threaded path, at the start-up cost of one thread
    ...patientLimits,
    ...(opts.redis
      ? { REDIS_URL: testRedisUrl, REDIS_PREFIX: typeof opts.redis === 'string' ? opts.redis : testRedisPrefix(t) }
      : {}),
    ...opts.env,
  };
  const app = await startApp({
    config: loadConfig(env),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  t.teardown(() => app.close());
  if (opts.plans) {
    for (const [code, limits] of Object.entries(opts.plans)) {
      await app.db
        .knex('subscription_plans')
        .where({ plan_code: code })
        .update({
          ...(limits.daily !== undefined ? { daily_post_limit: limits.daily } : {}),
          ...(limits.monthly !== undefined ? { monthly_post_limit: limits.monthly } : {}),
        });
    }
    app.invalidation.allPlans();
  }
  return app;
}
