/** NIP-70 protected events. */
import type { NostrEvent } from './nip01.js';

/** True when the event has a tag that is exactly `["-"]`. */
export function isProtected(ev: Pick<NostrEvent, 'tags'>): boolean {
  return ev.tags.some((t) => t.length === 1 && t[0] === '-');
}
