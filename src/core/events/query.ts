// Reading stored events for REQ and COUNT: one query per filter (NIP-01 limits apply per filter), merged
// newest first with duplicates removed. They read from the replica when there is one (store/read-replica.ts); a
// filter by ids that finds fewer events there than it names is asked of the primary, so that replication lag never
// hides from a client the event it has just published.
import * as filter from '../../nips/filter.js';
import type { Filter, FilterLimits } from '../../nips/filter.js';
import type { NostrEvent } from '../../nips/nip01.js';
import { countFilters, countFiltersFinding, queryFilter } from '../../store/events.js';
import type { Reads } from '../../store/read-replica.js';

export interface EventQueries {
  query(filters: Filter[]): Promise<NostrEvent[]>;
  count(filters: Filter[]): Promise<number>;
}

function newestFirst(a: NostrEvent, b: NostrEvent): number {
  if (a.created_at !== b.created_at) return b.created_at - a.created_at;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** For a filter by ids: true when fewer events came back than it names (within its limit). */
function missesIds(f: Filter, limit: number): ((found: NostrEvent[]) => boolean) | undefined {
  if (!f.ids) return undefined;
  const wanted = Math.min(new Set(f.ids).size, limit);
  return (found) => found.length < wanted;
}

export function createQueries(
  reads: Reads,
  limits: FilterLimits,
  now: () => number = () => Math.floor(Date.now() / 1000),
): EventQueries {
  const readFilter = (f: Filter) => {
    const limit = filter.effectiveLimit(f, limits);
    return reads.read((db) => queryFilter(db, f, limit, now()), missesIds(f, limit));
  };
  return {
    async query(filters) {
      const live = filters.filter((f) => !filter.matchesNothing(f));
      const results = await Promise.all(live.map(readFilter));
      if (results.length === 1) return results[0] ?? [];
      const seen = new Set<string>();
      const merged: NostrEvent[] = [];
      for (const ev of results.flat()) {
        if (seen.has(ev.id)) continue;
        seen.add(ev.id);
        merged.push(ev);
      }
      return merged.sort(newestFirst);
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
