// Readiness: the database answers and its schema is current, and Redis (when configured) is connected. The read
// replica never makes the service unready (the primary answers for it): without it the service is degraded.
import type { Database } from '../../store/db.js';
import { migrationsCurrent } from '../../store/migrate.js';
import type { ReplicaStatus } from '../../store/read-replica.js';
import type { Redis } from '../../store/redis.js';

export interface Readiness {
  readonly ready: boolean;
  /** Ready, but serving without a part it was configured with (the read replica). */
  readonly degraded: boolean;
  readonly checks: {
    readonly database: string;
    readonly migrations: string;
    readonly redis: string;
    readonly replica: string;
    readonly replicaLagSeconds: number | null;
  };
}

/** What readiness says of the replica: `ok`, or why reads go to the primary; from its last check (no I/O here). */
function replicaCheck(status: ReplicaStatus | undefined): string {
  if (!status) return 'not configured';
  if (status.state === 'up') return 'ok';
  if (status.state === 'checking') return 'degraded: not checked yet, reads go to the primary';
  return `degraded: ${status.state} (${status.reason ?? 'no reason given'}), reads go to the primary`;
}

export async function checkReadiness(db: Database, redis: Redis | undefined, replica?: ReplicaStatus): Promise<Readiness> {
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
  const replicaState = replicaCheck(replica);
  return {
    ready,
    degraded: replicaState.startsWith('degraded'),
    checks: { database, migrations, redis: cache, replica: replicaState, replicaLagSeconds: replica?.lagSeconds ?? null },
  };
}
