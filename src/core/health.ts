// Readiness: the database answers and its schema is current, and Redis (when configured) is connected.
import type { Database } from '../store/db.js';
import { migrationsCurrent } from '../store/migrate.js';
import type { Redis } from '../store/redis.js';
import { withDeadline } from './deadline.js';

/** Each dependency gets this long to answer: a probe is answered in bounded time, whatever the dependency does. */
const CHECK_MS = 2000;

export interface Readiness {
  readonly ready: boolean;
  readonly checks: { readonly database: string; readonly migrations: string; readonly redis: string };
}

export async function checkReadiness(db: Database, redis: Redis | undefined): Promise<Readiness> {
  let database = 'ok';
  let migrations = 'ok';
  try {
    const current = withDeadline(
      db.ping().then(() => migrationsCurrent(db.knex)),
      CHECK_MS,
      () => new Error(`no answer within ${CHECK_MS} ms`),
    );
    if (!(await current)) migrations = 'pending';
  } catch (err) {
    database = `error: ${err instanceof Error ? err.message : String(err)}`;
    migrations = 'unknown';
  }
  let cache = 'not configured';
  if (redis) {
    try {
      const pong = await withDeadline(redis.ping(), CHECK_MS, () => new Error(`no answer within ${CHECK_MS} ms`));
      cache = pong === 'PONG' ? 'ok' : 'error: unexpected PING answer';
    } catch (err) {
      cache = `error: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  const ready = database === 'ok' && migrations === 'ok' && (cache === 'ok' || cache === 'not configured');
  return { ready, checks: { database, migrations, redis: cache } };
}
