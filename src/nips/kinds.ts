/**
 * NIP-01 kind classes. This is the only module that compares kind ranges; everyone else asks
 * `kindClass(kind)` and switches over the answer.
 */
import type { NostrEvent } from 'nostr-tools/pure';

export type KindClass = 'regular' | 'replaceable' | 'ephemeral' | 'addressable';

export const Metadata = 0;
export const ShortTextNote = 1;
export const Contacts = 3;
export const EventDeletion = 5;
export const Repost = 6;
export const Reaction = 7;
export const GenericRepost = 16;
export const RelayList = 10002;
export const ClientAuth = 22242;
export const HTTPAuth = 27235;
export const LongFormArticle = 30023;

/**
 * replaceable: 0, 3, 10000–19999 (latest per pubkey+kind);
 * ephemeral: 20000–29999 (not stored);
 * addressable: 30000–39999 (latest per pubkey+kind+d);
 * regular: everything else (1, 2, 4–44, 1000–9999 as NIP-01 lists them, and any kind NIP-01
 * does not classify, e.g. 45–999 and 40000–65535).
 */
export function kindClass(kind: number): KindClass {
  if (kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000)) return 'replaceable';
  if (kind >= 20000 && kind < 30000) return 'ephemeral';
  if (kind >= 30000 && kind < 40000) return 'addressable';
  return 'regular';
}

/**
 * The part of the replacement key beyond pubkey+kind: the first `d` tag's value for an
 * addressable event ('' when it has no `d` tag or the tag has no value), '' for a replaceable
 * event, and null for regular and ephemeral events, which are never replaced.
 */
export function replaceKey(ev: Pick<NostrEvent, 'kind' | 'tags'>): string | null {
  switch (kindClass(ev.kind)) {
    case 'replaceable':
      return '';
    case 'addressable': {
      const tag = ev.tags.find((t) => t[0] === 'd');
      return tag?.[1] ?? '';
    }
    case 'regular':
    case 'ephemeral':
      return null;
  }
}

/**
 * NIP-01: of two versions of one replaceable or addressable event, whether `a` is the one kept over `b`: the newer
 * created_at, and on equal created_at the lower id.
 */
export function keptOver(a: Pick<NostrEvent, 'created_at' | 'id'>, b: Pick<NostrEvent, 'created_at' | 'id'>): boolean {
  return a.created_at > b.created_at || (a.created_at === b.created_at && a.id < b.id);
}
