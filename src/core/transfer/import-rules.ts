// The import's rules about single events and about the events of one batch, as the relay applies them: what is
// refused before a signature is checked, which versions of an address a batch keeps, and which events a deletion
// earlier in the same batch refuses. Pure functions over the parsed events.
import * as kinds from '../../nips/kinds.js';
import * as nip01 from '../../nips/nip01.js';
import * as nip09 from '../../nips/nip09.js';
import * as nip40 from '../../nips/nip40.js';
import { rejection, type Rejection } from '../../nips/result.js';
import type { UserRecord } from '../../store/users.js';

/** A signed event of the batch, with its line and its author's account. */
export interface Item {
  readonly line: number;
  readonly user: UserRecord;
  readonly ev: nip01.VerifiedEvent;
}

export const DELETED = rejection('blocked', 'this event was deleted by its author (NIP-09)');

/** The checks the relay makes before a signature is verified (core/admission.ts), in its order. */
export function precheck(
  ev: nip01.NostrEvent,
  limits: nip01.EventLimits,
  checkBans: ((ev: nip01.NostrEvent) => Rejection | undefined) | undefined,
  nowSeconds: number,
): Rejection | undefined {
  const limited = nip01.checkLimits(ev, limits, nowSeconds);
  if (limited) return limited;
  if (nip40.isExpired(ev, nowSeconds)) return rejection('invalid', 'this event has expired (NIP-40)');
  if (kinds.kindClass(ev.kind) === 'ephemeral')
    return rejection('invalid', `kind ${ev.kind} is ephemeral (NIP-01): it is never stored`);
  return checkBans?.(ev);
}

/**
 * The events of a batch that a deletion on an earlier line of the same batch names (NIP-09: by id, or by address up
 * to the deletion's created_at; the author's own, never a deletion): the relay, taking the lines in order, would
 * have refused them as deleted. The batch's deletions are stored after its other events, so this is decided here.
 */
export function deletedAbove(items: readonly Item[]): Set<Item> {
  const byId = new Map<string, number>();
  const byAddress = new Map<string, { line: number; createdAt: number }[]>();
  for (const d of items) {
    if (d.ev.kind !== kinds.EventDeletion) continue;
    const targets = nip09.deletionTargets(d.ev);
    for (const id of targets.ids) if (!byId.has(`${d.ev.pubkey}:${id}`)) byId.set(`${d.ev.pubkey}:${id}`, d.line);
    for (const a of targets.addresses) {
      const key = `${a.kind}:${a.pubkey}:${a.d}`;
      byAddress.set(key, [...(byAddress.get(key) ?? []), { line: d.line, createdAt: d.ev.created_at }]);
    }
  }
  const out = new Set<Item>();
  for (const item of items) {
    if (item.ev.kind === kinds.EventDeletion) continue;
    if ((byId.get(`${item.ev.pubkey}:${item.ev.id}`) ?? Infinity) < item.line) out.add(item);
    const d = kinds.replaceKey(item.ev);
    const byAddr = d === null ? undefined : byAddress.get(`${item.ev.kind}:${item.ev.pubkey}:${d}`);
    if (byAddr?.some((x) => x.line < item.line && item.ev.created_at <= x.createdAt)) out.add(item);
  }
  return out;
}

/** Of the versions of one address in a batch only the one NIP-01 keeps is stored; the others are superseded. */
export function latestVersions(items: readonly Item[], onSuperseded: () => void): Item[] {
  const kept = new Map<string, Item>();
  for (const item of items) {
    const key = `${item.ev.kind}:${item.ev.pubkey}:${kinds.replaceKey(item.ev)}`;
    const other = kept.get(key);
    if (other && kinds.keptOver(other.ev, item.ev)) onSuperseded();
    else {
      if (other) onSuperseded();
      kept.set(key, item);
    }
  }
  return [...kept.values()];
}
