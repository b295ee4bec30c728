// Reading stored events for REQ and COUNT: one query per filter (NIP-01 limits apply per filter), merged
// newest first with duplicates removed.
import type { Knex } from 'knex';
import * as filter from '../../nips/filter.js';
import type { Filter, FilterLimits } from '../../nips/filter.js';
import type { NostrEvent } from '../../nips/nip01.js';
import { countFilters, queryFilter } from '../../store/events.js';

export interface EventQueries {
  query(filters: Filter[]): Promise<NostrEvent[]>;
  count(filters: Filter[]): Promise<number>;
}

function newestFirst(a: NostrEvent, b: NostrEvent): number {
  if (a.created_at !== b.created_at) return b.created_at - a.created_at;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function createQueries(db: Knex, limits: FilterLimits, now: () => number = () => Math.floor(Date.now() / 1000)): EventQueries {
  return {
    async query(filters) {
      const live = filters.filter((f) => !filter.matchesNothing(f));
      const results = await Promise.all(live.map((f) => queryFilter(db, f, filter.effectiveLimit(f, limits), now())));
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
      return countFilters(db, filters.filter((f) => !filter.matchesNothing(f)), now());
    },
  };
}
