// Readiness: the database answers and its schema is current, and Redis (when configured) is connected. The read
// replica never makes the service unready (the primary answers for it): without it the service is degraded.
import type { Database } from '../../store/db.js';
import { migrationsCurrent } from '../../store/migrate.js';
import type { ReplicaStatus } from '../../store/read-replica.js';
import type { Redis } from '../../store/redis.js';
import { withDeadline } from '../../lib/deadline.js';

/** Each dependency gets this long to answer: a probe is answered in bounded time, whatever the dependency does. */
const CHECK_MS = 2000;

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

export async function checkReadiness(
  db: Database,
  redis: Redis | undefined,
  replica?: ReplicaStatus,
): Promise<Readiness> {
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
  const replicaState = replicaCheck(replica);
  return {
    ready,
    degraded: replicaState.startsWith('degraded'),
    checks: {
      database,
      migrations,
      redis: cache,
      replica: replicaState,
      replicaLagSeconds: replica?.lagSeconds ?? null,
    },
  };
}
