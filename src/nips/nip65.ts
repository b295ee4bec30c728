/** NIP-65 relay lists (kind 10002). */
import type { NostrEvent } from './nip01.js';
import { parseRelayUrl } from './relay-url.js';

/**
 * The author's write relays: `r` tags with no marker (read and write) or the marker 'write',
 * normalised by parseRelayUrl, deduplicated, in tag order. Tags whose URL is not a valid
 * ws:// or wss:// relay URL are dropped.
 */
export function writeRelays(ev: Pick<NostrEvent, 'tags'>): string[] {
  const out: string[] = [];
  for (const tag of ev.tags) {
    if (tag[0] !== 'r' || tag[1] === undefined) continue;
    const marker = tag[2];
    if (marker !== undefined && marker !== '' && marker !== 'write') continue;
    const parsed = parseRelayUrl(tag[1]);
    if (parsed.ok && !out.includes(parsed.value.url)) out.push(parsed.value.url);
  }
  return out;
}
