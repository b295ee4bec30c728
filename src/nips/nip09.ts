/**
 * NIP-09 deletion requests (kind 5).
 *
 * `deletionTargets` only reads the request; the caller still decides against what it has stored:
 * - an `e` target is removed only if the stored event has the deletion's pubkey, and never if the
 *   stored event is itself a kind-5 deletion (a deletion aimed at a deletion has no effect);
 * - an `a` target removes every version of kind+pubkey+d with created_at <= the deletion's
 *   created_at;
 * - the kind-5 event itself is stored and served as usual.
 */
import { isHex64 } from './nip01.js';
import type { NostrEvent } from './nip01.js';
import { EventDeletion, kindClass } from './kinds.js';

interface DeletionAddress {
  kind: number;
  pubkey: string;
  /** '' for replaceable kinds, whatever the coordinate said. */
  d: string;
}

export interface DeletionTargets {
  ids: string[];
  addresses: DeletionAddress[];
}

const KIND = /^(0|[1-9][0-9]{0,4})$/;

/**
 * Whether a deletion request can remove, or refuse, an event of this kind: any but a deletion request itself ("a
 * deletion request against a deletion request has no effect", whether it came first or after).
 */
export function canBeDeletedByRequest(kind: number): boolean {
  return kind !== EventDeletion;
}

/**
 * The event ids (`e` tags with a 64-hex value) and addresses (`a` tags `kind:pubkey:d`) that a
 * kind-5 event asks to delete. Deduplicated, in tag order. Ignored: a non-kind-5 event (empty
 * result), malformed values, coordinates whose pubkey is not the deletion's author, and
 * coordinates of kinds that have no address (regular or ephemeral kinds, including kind 5).
 */
export function deletionTargets(ev: NostrEvent): DeletionTargets {
  const ids: string[] = [];
  const addresses: DeletionAddress[] = [];
  if (ev.kind !== EventDeletion) return { ids, addresses };
  const seen = new Set<string>();
  for (const tag of ev.tags) {
    const value = tag[1];
    if (value === undefined) continue;
    if (tag[0] === 'e') {
      if (isHex64(value) && !seen.has(value)) {
        seen.add(value);
        ids.push(value);
      }
    } else if (tag[0] === 'a') {
      const first = value.indexOf(':');
      const second = value.indexOf(':', first + 1);
      if (first < 0 || second < 0) continue;
      const kindText = value.slice(0, first);
      const pubkey = value.slice(first + 1, second);
      if (!KIND.test(kindText) || pubkey !== ev.pubkey) continue;
      const kind = Number(kindText);
      const cls = kindClass(kind);
      if (kind > 65535 || (cls !== 'replaceable' && cls !== 'addressable')) continue;
      const d = cls === 'replaceable' ? '' : value.slice(second + 1);
      const key = `${kind}:${d}`;
      if (seen.has(key)) continue;
      seen.add(key);
      addresses.push({ kind, pubkey, d });
    }
  }
  return { ids, addresses };
}
