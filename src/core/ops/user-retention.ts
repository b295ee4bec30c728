// The users' own retention periods (users.data_retention_days), applied by the maintenance runner every hour: per
// period in use, the rows about the users' activity older than it are erased a batch at a time (what falls under it:
// store/user-retention.ts RETENTION_SCOPE). A user who shortens their period loses the older rows at the next run;
// 0 keeps everything. Nothing is sent to upstream relays: what was forwarded there stays there.
import type { Knex } from 'knex';
import {
  eraseEndedSessionsBefore,
  eraseEventsBefore,
  eraseUsageEventsBefore,
  retentionPeriods,
} from '../../store/user-retention.js';

export interface UserRetentionRun {
  readonly events: number;
  readonly usageEvents: number;
  readonly sessions: number;
}

/** Rows per statement, and statements per table and period in one run: a run stays short, the next one goes on. */
const BATCH = 1000;
const MAX_BATCHES = 100;

type Eraser = (db: Knex, days: number, before: Date, limit: number) => Promise<number>;

async function eraseInBatches(db: Knex, erase: Eraser, days: number, before: Date): Promise<number> {
  let erased = 0;
  for (let i = 0; i < MAX_BATCHES; i++) {
    const n = await erase(db, days, before, BATCH);
    erased += n;
    if (n < BATCH) break;
  }
  return erased;
}

/** Erases, for every user with a retention period, what is older than it as of `nowSeconds`; returns the counts. */
export async function applyUserRetention(db: Knex, nowSeconds: number): Promise<UserRetentionRun> {
  let events = 0;
  let usageEvents = 0;
  let sessions = 0;
  for (const days of await retentionPeriods(db)) {
    const before = new Date((nowSeconds - days * 86_400) * 1000);
    events += await eraseInBatches(db, eraseEventsBefore, days, before);
    usageEvents += await eraseInBatches(db, eraseUsageEventsBefore, days, before);
    sessions += await eraseInBatches(db, eraseEndedSessionsBefore, days, before);
  }
  return { events, usageEvents, sessions };
}
