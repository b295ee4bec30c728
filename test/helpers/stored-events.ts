// What a real client reads from a relay: nostr-tools' Relay subscribed to the filters, its events collected until
// EOSE, then the subscription closed. A subscription the relay closes first (CLOSED) fails with its reason.
import type { Relay } from 'nostr-tools/relay';
import type { NostrEvent } from 'nostr-tools/pure';
import type { Filter } from 'nostr-tools/filter';

export function storedEvents(relay: Relay, ...filters: Filter[]): Promise<NostrEvent[]> {
  return new Promise((resolve, reject) => {
    const out: NostrEvent[] = [];
    const sub = relay.subscribe(filters, {
      onevent: (e) => out.push(e),
      oneose: () => {
        resolve(out);
        sub.close();
      },
      // after EOSE this is our own close, and the promise is settled already
      onclose: (reason) => reject(new Error(`closed before EOSE: ${reason}`)),
    });
  });
}
