// Live subscriptions of every connection in this process, matched against each broadcast. Subscriptions are
// indexed by their most selective field (ids, then authors, then kinds) so an event is tested only against the
// subscriptions that could match it; filters with none of those are tested against every event.
import * as filter from '../nips/filter.js';
import type { Filter } from '../nips/filter.js';
import type { NostrEvent } from '../nips/nip01.js';

export interface Subscriber {
  /** Sends a ready NIP-01 EVENT message for `subId`. */
  deliver(subId: string, eventJson: string): void;
}

interface Sub {
  readonly owner: Subscriber;
  readonly subId: string;
  readonly filters: Filter[];
  readonly keys: string[];
}

const anyKey = '*';

function indexKeys(f: Filter): string[] {
  if (f.ids) return f.ids.map((id) => `i:${id}`);
  if (f.authors) return f.authors.map((a) => `a:${a}`);
  if (f.kinds) return f.kinds.map((k) => `k:${k}`);
  return [anyKey];
}

export class SubscriptionIndex {
  private readonly byKey = new Map<string, Set<Sub>>();
  private readonly byOwner = new Map<Subscriber, Map<string, Sub>>();

  get size(): number {
    let n = 0;
    for (const subs of this.byOwner.values()) n += subs.size;
    return n;
  }

  count(owner: Subscriber): number {
    return this.byOwner.get(owner)?.size ?? 0;
  }

  has(owner: Subscriber, subId: string): boolean {
    return this.byOwner.get(owner)?.has(subId) ?? false;
  }

  add(owner: Subscriber, subId: string, filters: Filter[]): void {
    this.remove(owner, subId);
    const keys = [...new Set(filters.flatMap(indexKeys))];
    const sub: Sub = { owner, subId, filters, keys };
    for (const k of keys) {
      let set = this.byKey.get(k);
      if (!set) this.byKey.set(k, (set = new Set()));
      set.add(sub);
    }
    let subs = this.byOwner.get(owner);
    if (!subs) this.byOwner.set(owner, (subs = new Map<string, Sub>()));
    subs.set(subId, sub);
  }

  remove(owner: Subscriber, subId: string): boolean {
    const subs = this.byOwner.get(owner);
    const sub = subs?.get(subId);
    if (!subs || !sub) return false;
    subs.delete(subId);
    if (subs.size === 0) this.byOwner.delete(owner);
    for (const k of sub.keys) {
      const set = this.byKey.get(k);
      set?.delete(sub);
      if (set?.size === 0) this.byKey.delete(k);
    }
    return true;
  }

  removeOwner(owner: Subscriber): void {
    for (const subId of [...(this.byOwner.get(owner)?.keys() ?? [])]) this.remove(owner, subId);
  }

  /** Delivers the event to every subscription with a matching filter, once per subscription. */
  dispatch(ev: NostrEvent, json: string): number {
    const candidates = new Set<Sub>();
    for (const k of [anyKey, `i:${ev.id}`, `a:${ev.pubkey}`, `k:${ev.kind}`]) {
      const set = this.byKey.get(k);
      if (set) for (const s of set) candidates.add(s);
    }
    let delivered = 0;
    for (const sub of candidates) {
      if (!filter.matchFilters(sub.filters, ev)) continue;
      sub.owner.deliver(sub.subId, json);
      delivered++;
    }
    return delivered;
  }
}
