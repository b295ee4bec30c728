// Export of stored events: every live event matching a NIP-01 filter (what a REQ would be served, without its page
// limit), oldest first, read page by page along an index (store/events.ts exportPage), so a store of any size is
// written out in bounded memory, each event as its JSON text (nips/nip01.ts eventJson). The filter's own `limit`, if
// any, caps how many are exported.
import type { Knex } from 'knex';
import * as filter from '../../nips/filter.js';
import type { Filter } from '../../nips/filter.js';
import type { EventText } from '../../nips/nip01.js';
import { exportPage, type ExportCursor } from '../../store/events.js';

export interface ExportOptions {
  /** Events read per query (default 2000). */
  readonly pageSize?: number;
  /** Seconds since the epoch: NIP-40 expiry is judged against it. */
  readonly now?: () => number;
}

/** Limits for parsing an export filter: no cap on `limit` and long value lists (an operator's own query). */
export const exportFilterLimits: filter.FilterLimits = {
  maxLimit: Number.MAX_SAFE_INTEGER,
  defaultLimit: Number.MAX_SAFE_INTEGER,
  maxFilterValues: 100_000,
};

export async function* exportEvents(db: Knex, f: Filter, opts: ExportOptions = {}): AsyncGenerator<EventText> {
  if (filter.matchesNothing(f)) return;
  const pageSize = opts.pageSize ?? 2000;
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  let left = f.limit ?? Infinity;
  let after: ExportCursor | undefined;
  while (left > 0) {
    const page = await exportPage(db, f, after, Math.min(pageSize, left), now());
    for (const ev of page) yield ev;
    left -= page.length;
    const last = page[page.length - 1];
    if (!last || page.length < pageSize) return;
    after = { createdAt: last.created_at, id: last.id };
  }
}
