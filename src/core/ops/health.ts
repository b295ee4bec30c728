// Readiness: the database answers and its schema is current, and Redis (when configured) is connected.
import type { Database } from '../../store/db.js';
import { migrationsCurrent } from '../../store/migrate.js';
import type { Redis } from '../../store/redis.js';

export interface Readiness {
  readonly ready: boolean;
  readonly checks: { readonly database: string; readonly migrations: string; readonly redis: string };
}

export async function checkReadiness(db: Database, redis: Redis | undefined): Promise<Readiness> {
  let database = 'ok';
  let migrations = 'ok';
  try {
    await db.ping();
    if (!(await migrationsCurrent(db.knex))) migrations = 'pending';
  } catch (err) {
    database = `error: ${err instanceof Error ? err.message : String(err)}`;
    migrations = 'unknown';
  }
  let cache = 'not configured';
  if (redis) {
    try {
      cache = (await redis.ping()) === 'PONG' ? 'ok' : 'error: unexpected PING answer';
    } catch (err) {
      cache = `error: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  const ready = database === 'ok' && migrations === 'ok' && (cache === 'ok' || cache === 'not configured');
  return { ready, checks: { database, migrations, redis: cache } };
}
