/**
 * NIP-01 filters: parsing with limits, and matching against events.
 *
 * Matching is written here rather than delegated to nostr-tools' matchFilter for two reasons:
 * our Filter keeps tag conditions under `tags` (keyed by the letter) while nostr-tools reads
 * `#x` keys, so every call would need a converted copy on the fan-out hot path; and
 * nostr-tools tests `filter.until && …`, so `until: 0` matches everything instead of only
 * events with created_at 0. The rules are NIP-01's: fields AND together, filters OR together,
 * since/until are inclusive, and a tag condition looks at the first value of each tag.
 */
import { isHex64 } from './nip01.js';
import type { NostrEvent } from './nip01.js';
import { fail, ok } from './result.js';
import type { Result } from './result.js';

export interface Filter {
  ids?: string[];
  authors?: string[];
  kinds?: number[];
  since?: number;
  until?: number;
  limit?: number;
  /** Tag conditions keyed by the single letter: `{"#e": [...]}` becomes `tags: { e: [...] }`. */
  tags?: Record<string, string[]>;
}

export interface FilterLimits {
  maxLimit: number;
  defaultLimit: number;
  /** Most values allowed in any one array (ids, authors, kinds, each #x). */
  maxFilterValues: number;
}

const TAG_KEY = /^#[a-zA-Z]$/;
const HEX_PREFIX = /^[0-9a-f]{1,63}$/;

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isNonNegativeInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function hexList(field: string, value: unknown, what: string, max: number): Result<string[]> {
  if (!Array.isArray(value)) return fail('invalid', `filter "${field}" must be an array`);
  if (value.length > max) return fail('invalid', `filter "${field}" has ${value.length} values, the limit is ${max}`);
  for (const v of value) {
    if (isHex64(v)) continue;
    if (typeof v === 'string' && HEX_PREFIX.test(v)) {
      return fail('invalid', `filter "${field}" has a prefix "${v}", only full 64-character ${what} are supported`);
    }
    return fail('invalid', `filter "${field}" values must be 64-character lowercase hex ${what}`);
  }
  return ok(value.slice() as string[]);
}

/**
 * Validates one filter object and returns a fresh Filter. Empty arrays are allowed (they match
 * nothing); `limit` above maxLimit is lowered to maxLimit. Unknown fields are refused.
 */
export function parseFilter(raw: unknown, limits: FilterLimits): Result<Filter> {
  if (!isRecord(raw)) return fail('invalid', 'filter must be a JSON object');
  const max = limits.maxFilterValues;
  const f: Filter = {};
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'ids':
      case 'authors': {
        const r = hexList(key, value, key === 'ids' ? 'ids' : 'pubkeys', max);
        if (!r.ok) return r;
        f[key] = r.value;
        break;
      }
      case 'kinds': {
        if (!Array.isArray(value)) return fail('invalid', 'filter "kinds" must be an array');
        if (value.length > max)
          return fail('invalid', `filter "kinds" has ${value.length} values, the limit is ${max}`);
        for (const k of value) {
          if (!isNonNegativeInteger(k) || k > 65535)
            return fail('invalid', 'filter "kinds" values must be integers from 0 to 65535');
        }
        f.kinds = value.slice() as number[];
        break;
      }
      case 'since':
      case 'until':
      case 'limit':
        if (!isNonNegativeInteger(value)) return fail('invalid', `filter "${key}" must be a non-negative integer`);
        f[key] = key === 'limit' ? Math.min(value, limits.maxLimit) : value;
        break;
      default: {
        if (!key.startsWith('#')) return fail('invalid', `unknown filter field "${key.slice(0, 64)}"`);
        if (!TAG_KEY.test(key))
          return fail('invalid', `filter tag field "${key.slice(0, 64)}" must be # and a single letter`);
        const letter = key.slice(1);
        if (letter === 'e' || letter === 'p') {
          const r = hexList(key, value, letter === 'e' ? 'ids' : 'pubkeys', max);
          if (!r.ok) return r;
          (f.tags ??= {})[letter] = r.value;
          break;
        }
        if (!Array.isArray(value)) return fail('invalid', `filter "${key}" must be an array`);
        if (value.length > max)
          return fail('invalid', `filter "${key}" has ${value.length} values, the limit is ${max}`);
        for (const v of value) {
          if (typeof v !== 'string') return fail('invalid', `filter "${key}" values must be strings`);
        }
        // A value holding a NUL matches no stored event (an event with one is refused), and the database's text
        // cannot carry it: it is dropped, and a tag left with no value matches nothing, as an empty list does.
        (f.tags ??= {})[letter] = (value as string[]).filter((v) => !v.includes('\u0000'));
      }
    }
  }
  return ok(f);
}

export function matchFilter(f: Filter, ev: NostrEvent): boolean {
  if (f.ids && !f.ids.includes(ev.id)) return false;
  if (f.kinds && !f.kinds.includes(ev.kind)) return false;
  if (f.authors && !f.authors.includes(ev.pubkey)) return false;
  if (f.since !== undefined && ev.created_at < f.since) return false;
  if (f.until !== undefined && ev.created_at > f.until) return false;
  if (f.tags) {
    for (const letter in f.tags) {
      const values = f.tags[letter] as string[];
      let found = false;
      for (const tag of ev.tags) {
        if (tag[0] === letter && tag[1] !== undefined && values.includes(tag[1])) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
  }
  return true;
}

export function matchFilters(fs: Filter[], ev: NostrEvent): boolean {
  for (const f of fs) {
    if (matchFilter(f, ev)) return true;
  }
  return false;
}

/** The order of a query's stored events (NIP-01): newest first, ties by lowest id. */
export function newestFirst(
  a: Pick<NostrEvent, 'created_at' | 'id'>,
  b: Pick<NostrEvent, 'created_at' | 'id'>,
): number {
  if (a.created_at !== b.created_at) return b.created_at - a.created_at;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** How many stored events the initial query may return: limit (clamped) or defaultLimit. */
export function effectiveLimit(f: Filter, limits: FilterLimits): number {
  return Math.min(f.limit ?? limits.defaultLimit, limits.maxLimit);
}

/** True when no event can match: an empty ids/authors/kinds/#x array, or since > until. */
export function matchesNothing(f: Filter): boolean {
  if (f.ids?.length === 0 || f.authors?.length === 0 || f.kinds?.length === 0) return true;
  if (f.since !== undefined && f.until !== undefined && f.since > f.until) return true;
  if (f.tags) {
    for (const letter in f.tags) {
      if (f.tags[letter]?.length === 0) return true;
    }
  }
  return false;
}
