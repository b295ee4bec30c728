// Reads that tolerate replication lag go to a streaming replica (DATABASE_READ_URL) while it is well; the primary
// answers them when there is no replica, while it is down or too far behind, and for any one read it failed. A
// check runs every `checkMs`: it measures the lag, and it alone brings a replica that failed back into use, so a
// failing replica is retried at most once per check and client reads never wait on a dead one twice.
import type { Knex } from 'knex';
import { withDeadline } from '../lib/deadline.js';

/** up: reads go to it; lagging: it answers but is further behind than allowed; down: it failed or does not answer. */
export type ReplicaState = 'checking' | 'up' | 'lagging' | 'down';

export interface ReplicaStatus {
  readonly state: ReplicaState;
  /** Seconds behind the primary at the last check; null when unknown (never checked, or down). */
  readonly lagSeconds: number | null;
  /** Why it is down or lagging. */
  readonly reason?: string;
  readonly since: Date;
}

/** Where a read went: `replica`, or `primary` and why (`ids_missing`: the replica lacked an event asked by id). */
type ReadTarget = 'replica' | 'primary';
type FallbackReason = '' | 'replica_checking' | 'replica_down' | 'replica_lagging' | 'replica_failed' | 'ids_missing';

export interface Reads {
  /**
   * Runs `run` on the replica when it is in use, else on the primary. A read the replica fails is run on the
   * primary; when that succeeds the replica is taken out of use until a check finds it well. `incomplete` says of a
   * replica's answer that it may lack what the primary holds (an event asked by id): the primary is asked then.
   */
  read<T>(run: (db: Knex) => Promise<T>, incomplete?: (answer: T) => boolean): Promise<T>;
  /** `read` for a stream of batches: the primary takes over only if the replica fails before the first batch. */
  stream<T>(open: (db: Knex) => AsyncIterable<T>): AsyncIterable<T>;
  /** Undefined without a replica. */
  status(): ReplicaStatus | undefined;
  close(): void;
}

/** Without a replica every read is the primary's. */
export function primaryReads(primary: Knex): Reads {
  return {
    read: (run) => run(primary),
    stream: (open) => open(primary),
    status: () => undefined,
    close: () => undefined,
  };
}

export interface ReplicaReadsOptions {
  readonly primary: Knex;
  readonly replica: Knex;
  /** Time between checks, and the least time a failed replica stays out of use. */
  readonly checkMs: number;
  /** Above this lag the replica is left aside; 0 = no limit. */
  readonly maxLagSeconds: number;
  /** Told of each change of state (the composition root logs it). */
  onChange?(status: ReplicaStatus, previous: ReplicaStatus): void;
  /** Told of each read, where it went (metrics). */
  onRead?(target: ReadTarget, reason: FallbackReason): void;
}

/** The least time a check may take before the replica is taken as down (a loaded server answers slowly, not never). */
const CHECK_TIMEOUT_MS = 3000;

const reasonOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function replicaReads(opts: ReplicaReadsOptions): Reads {
  const { primary, replica } = opts;
  let status: ReplicaStatus = { state: 'checking', lagSeconds: null, since: new Date() };
  /** A replica that failed a read is not checked again before this time (ms since the epoch). */
  let retryAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const checkTimeoutMs = Math.max(opts.checkMs, CHECK_TIMEOUT_MS);

  const become = (next: Omit<ReplicaStatus, 'since'>) => {
    const previous = status;
    const changed = next.state !== previous.state;
    status = { ...next, since: changed ? new Date() : previous.since };
    if (changed) opts.onChange?.(status, previous);
  };
  const failed = (err: unknown) => {
    retryAt = Date.now() + opts.checkMs;
    become({ state: 'down', lagSeconds: null, reason: reasonOf(err) });
  };
  const fallbackReason = (): FallbackReason => (status.state === 'up' ? '' : `replica_${status.state}`);
  const onPrimary = <T>(reason: FallbackReason, run: (db: Knex) => T): T => {
    opts.onRead?.('primary', reason);
    return run(primary);
  };

  async function check(): Promise<void> {
    if (Date.now() < retryAt) return;
    try {
      // A check that gets no answer must not wait for the connection timeout (minutes for a host that is gone).
      const lag = await withDeadline(
        replicaLag(replica),
        checkTimeoutMs,
        () => new Error(`no answer to a check within ${checkTimeoutMs} ms`),
      );
      if (Date.now() < retryAt) return; // a read failed meanwhile: that is newer news
      const tooFar = opts.maxLagSeconds > 0 && (lag === null || lag > opts.maxLagSeconds);
      if (!tooFar) become({ state: 'up', lagSeconds: lag });
      else
        become({
          state: 'lagging',
          lagSeconds: lag,
          reason: `${lag === null ? 'an unknown time' : `${lag.toFixed(1)} s`} behind, the limit is ${opts.maxLagSeconds} s`,
        });
    } catch (err) {
      become({ state: 'down', lagSeconds: null, reason: reasonOf(err) });
    }
  }
  const loop = async () => {
    await check();
    if (!closed) timer = setTimeout(() => void loop(), opts.checkMs).unref();
  };
  void loop();

  return {
    async read<T>(run: (db: Knex) => Promise<T>, incomplete?: (answer: T) => boolean): Promise<T> {
      if (status.state !== 'up') return onPrimary(fallbackReason(), run);
      let answer: T;
      try {
        answer = await run(replica);
      } catch (err) {
        // If the primary fails too, the read itself is at fault: its error is the one to report, and the replica
        // stays in use.
        const fromPrimary = await onPrimary('replica_failed', run);
        failed(err);
        return fromPrimary;
      }
      opts.onRead?.('replica', '');
      if (incomplete?.(answer)) return onPrimary('ids_missing', run);
      return answer;
    },
    async *stream(open) {
      if (status.state !== 'up') {
        yield* onPrimary(fallbackReason(), open);
        return;
      }
      let started = false;
      let failure: unknown;
      try {
        for await (const batch of open(replica)) {
          if (!started) opts.onRead?.('replica', '');
          started = true;
          yield batch;
        }
        return;
      } catch (err) {
        if (started) throw err;
        failure = err;
      }
      // Blamed once the primary answers (as in `read`), so that a stream failing on both leaves the replica in use.
      let blamed = false;
      for await (const batch of onPrimary('replica_failed', open)) {
        if (!blamed) failed(failure);
        blamed = true;
        yield batch;
      }
      if (!blamed) failed(failure);
    },
    status: () => status,
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}

interface LagRow {
  standby: boolean;
  receivers: string | number;
  receiver_status: string | null;
  replayed_all: boolean | null;
  behind: string | number | null;
}

/**
 * Seconds the replica is behind its primary: 0 while it streams and has replayed all it received (an idle primary
 * sends nothing, and `now() - pg_last_xact_replay_timestamp()` would then grow with no lag at all), else the age of
 * the last transaction it replayed; null when it never replayed one. 0 for a server that is not a standby. The WAL
 * receiver's status is visible only to members of pg_read_all_stats (pg_monitor); without it, streaming is assumed
 * while a receiver runs.
 */
async function replicaLag(db: Knex): Promise<number | null> {
  const { rows } = (await db.raw(`
    select pg_is_in_recovery() as standby,
           (select count(*) from pg_stat_wal_receiver) as receivers,
           (select status from pg_stat_wal_receiver limit 1) as receiver_status,
           pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() as replayed_all,
           extract(epoch from now() - pg_last_xact_replay_timestamp()) as behind`)) as { rows: LagRow[] };
  const row = rows[0];
  if (!row?.standby) return 0;
  const streaming = Number(row.receivers) > 0 && (row.receiver_status === null || row.receiver_status === 'streaming');
  if (streaming && row.replayed_all) return 0;
  return row.behind === null ? null : Math.max(0, Number(row.behind));
}
