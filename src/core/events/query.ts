// Reading stored events for REQ and COUNT: one query per filter (NIP-01 limits apply per filter), merged newest
// first with duplicates removed. While fewer than READS_ALONE_UNDER read statements run, a filter is read at once,
// alone; past that, the filters of REQs that arrive together are read together (store/events.ts queryFilters: one
// author's or one tag value's reads in a prepared statement, others a branch each of one statement), at most
// READS_IN_FLIGHT at a time: under load one round trip, one backend's wake-up and one socket write serve many reads.
// They read from the replica when there is one (store/read-replica.ts); a filter by ids that finds fewer events there
// than it names is asked of the primary, so that replication lag never hides from a client the event it has just
// published.
import * as filter from '../../nips/filter.js';
import type { Filter, FilterLimits } from '../../nips/filter.js';
import type { EventText } from '../../nips/nip01.js';
import { createBatcher } from '../../lib/batcher.js';
import { countFilters, countFiltersFinding, queryFilters, type FilterRead } from '../../store/events.js';
import type { Reads } from '../../store/read-replica.js';
import { isStatementTimeout } from '../../store/retryable-errors.js';

export interface EventQueries {
  query(filters: Filter[]): Promise<EventText[]>;
  count(filters: Filter[]): Promise<number>;
}

/**
 * Read statements running at once per process: past it, reads wait and leave together. At the bench's 32 reads in
 * flight they form statements of 8 well below it; it keeps a crowd of readers from taking every connection of the
 * default pool (10), which the group commit and the forwarder need too.
 */
const READS_IN_FLIGHT = 6;
/**
 * While fewer read statements than this run, a read leaves at once, alone. A shared statement's branches run one
 * after another in one backend, where reads alone would run side by side on the database's cores: sharing pays only
 * when reads queue. Measured at a steady 500 timelines a second (docs/benchmarks.md): EOSE p99 ~15 ms with 2 against
 * ~29 ms sharing whatever arrived together, and about as many saturated timelines a second.
 */
const READS_ALONE_UNDER = 2;
/**
 * Branches per statement. Measured on the million-event store (docs/benchmarks.md): read one statement after
 * another, a timeline took about as long per read in statements of 8 and 16 and twice as long in statements of 32.
 */
const FILTERS_PER_STATEMENT = 8;
/** Values bound in one statement: far below PostgreSQL's 65,535 parameters (a filter may bind thousands). */
const MAX_BOUND_VALUES = 20_000;

/** The values a filter's statement binds, about. */
function boundValues(f: Filter): number {
  let n = 4 + (f.ids?.length ?? 0) + (f.authors?.length ?? 0) + (f.kinds?.length ?? 0);
  for (const values of Object.values(f.tags ?? {})) n += 1 + values.length;
  return n;
}

/** A read that failed on its own, after its shared statement ran past the timeout. */
class ReadFailure {
  constructor(readonly cause: unknown) {}
}

type Answer = EventText[] | ReadFailure;

/** For a read by ids: true when fewer events came back than it names (within its limit). */
function missesIds({ filter: f, limit }: FilterRead, found: readonly EventText[]): boolean {
  if (!f.ids) return false;
  return found.length < Math.min(new Set(f.ids).size, limit);
}

export interface QueryOptions {
  /** Seconds since the epoch (tests set it). */
  readonly now?: () => number;
  /** Told the reads, the duration and the outcome of every statement (metrics). */
  readonly onStatement?: (reads: number, seconds: number, outcome: 'answered' | 'failed') => void;
}

export function createQueries(reads: Reads, limits: FilterLimits, options: QueryOptions = {}): EventQueries {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  // A replica's answer that misses an event asked by id sends the whole statement to the primary (rare: only
  // while the replica has not yet replayed an event just stored).
  const readStatement = async (batch: FilterRead[]) => {
    const started = process.hrtime.bigint();
    const took = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const answers = await reads.read(
        (db) => queryFilters(db, batch, now()),
        (found) => found.some((events, i) => missesIds(batch[i]!, events)),
      );
      options.onStatement?.(batch.length, took(), 'answered');
      return answers;
    } catch (err) {
      options.onStatement?.(batch.length, took(), 'failed');
      throw err;
    }
  };
  // One slow filter must not cost the others sharing its statement their answer: past the statement timeout, each
  // is read again alone, and only what fails alone fails. One after another, in the place the statement held: when
  // the database is slow for everyone, re-reading them all at once would take the connections the writes need.
  const readShared = async (batch: FilterRead[]): Promise<Map<FilterRead, Answer>> => {
    try {
      const answers = await readStatement(batch);
      return new Map(batch.map((r, i) => [r, answers[i] ?? []]));
    } catch (err) {
      if (batch.length === 1 || !isStatementTimeout(err)) throw err;
      const alone = new Map<FilterRead, Answer>();
      for (const r of batch) {
        alone.set(
          r,
          await readStatement([r]).then(
            (a) => a[0] ?? [],
            (e: unknown) => new ReadFailure(e),
          ),
        );
      }
      return alone;
    }
  };
  const readBatched = createBatcher<FilterRead, Answer>(readShared, {
    maxBatch: FILTERS_PER_STATEMENT,
    maxInFlight: READS_IN_FLIGHT,
    aloneUnder: READS_ALONE_UNDER,
    weight: (r) => boundValues(r.filter),
    maxWeight: MAX_BOUND_VALUES,
  });
  const readFilter = async (f: Filter): Promise<EventText[]> => {
    const limit = filter.effectiveLimit(f, limits);
    if (limit <= 0) return []; // `limit: 0` asks for live events only: nothing to read
    const answer = await readBatched({ filter: f, limit });
    if (answer instanceof ReadFailure) throw answer.cause;
    return answer ?? [];
  };
  return {
    async query(filters) {
      const live = filters.filter((f) => !filter.matchesNothing(f));
      const results = await Promise.all(live.map(readFilter));
      if (results.length === 1) return results[0] ?? [];
      const seen = new Set<string>();
      const merged: EventText[] = [];
      for (const ev of results.flat()) {
        if (seen.has(ev.id)) continue;
        seen.add(ev.id);
        merged.push(ev);
      }
      return merged.sort(filter.newestFirst);
    },
    async count(filters) {
      const live = filters.filter((f) => !filter.matchesNothing(f));
      const named = [...new Set(live.flatMap((f) => f.ids ?? []))];
      if (named.length === 0) return reads.read((db) => countFilters(db, live, now()));
      const { count } = await reads.read(
        (db) => countFiltersFinding(db, live, now(), named),
        ({ found }) => found < named.length,
      );
      return count;
    },
  };
}
