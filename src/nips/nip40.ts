/** NIP-40 expiration timestamps. */
import type { NostrEvent } from './nip01.js';
import { kindClass } from './kinds.js';

const DIGITS = /^[0-9]{1,16}$/;

/** The first `expiration` tag as unix seconds; undefined when absent or not a plain integer. */
export function expiration(ev: Pick<NostrEvent, 'tags'>): number | undefined {
  const tag = ev.tags.find((t) => t[0] === 'expiration');
  const value = tag?.[1];
  if (value === undefined || !DIGITS.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * True once now has reached the expiration time (an event expiring at T is expired at T).
 * Always false for ephemeral kinds: NIP-40 says the tag has no effect on them.
 */
export function isExpired(ev: Pick<NostrEvent, 'kind' | 'tags'>, nowSeconds: number): boolean {
  if (kindClass(ev.kind) === 'ephemeral') return false;
  const at = expiration(ev);
  return at !== undefined && at <= nowSeconds;
}
