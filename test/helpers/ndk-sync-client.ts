// NDK's NIP-77 sync as a client process of its own: `node --import tsx test/helpers/ndk-sync-client.ts` with a JSON
// request on stdin ({ relayUrl, filter, cached: events }) prints one JSON line ({ need, have, fetched }: event ids)
// and exits. NDK keeps reconnection and keep-alive timers past its last use, so it runs apart from the test's process;
// it connects only to the given loopback relay (no outbox model, no relays learnt from users).
import { WebSocket } from 'ws';
import NDK, { NDKEvent, type NDKCacheAdapter, type NDKFilter, type NDKSubscription } from '@nostr-dev-kit/ndk';
import { NDKSync } from '@nostr-dev-kit/sync';
import { matchFilters, type Filter } from 'nostr-tools/filter';
import type { NostrEvent } from 'nostr-tools/pure';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket; // NDK opens its sockets with the global

interface Request {
  readonly relayUrl: string;
  readonly filter: NDKFilter;
  readonly cached: NostrEvent[];
}

let input = '';
for await (const chunk of process.stdin) input += String(chunk);
const req = JSON.parse(input) as Request;
const cached = [...req.cached];
const ndk: NDK = new NDK({
  explicitRelayUrls: [req.relayUrl],
  enableOutboxModel: false,
  autoConnectUserRelays: false,
  relayConnectionFilter: (url: string) => url.startsWith('ws://127.0.0.1:'),
});
const cache: NDKCacheAdapter = {
  locking: true,
  query: (sub: NDKSubscription) =>
    cached.filter((ev) => matchFilters(sub.filters as Filter[], ev)).map((ev) => new NDKEvent(ndk, ev)),
  setEvent: async (ev: NDKEvent) => {
    cached.push(ev.rawEvent() as NostrEvent);
  },
};
ndk.cacheAdapter = cache;
await ndk.connect(5000);
const result = await NDKSync.sync(ndk, req.filter, { relayUrls: [req.relayUrl], autoFetch: true, timeout: 20_000 });
process.stdout.write(
  JSON.stringify({ need: [...result.need], have: [...result.have], fetched: result.events.map((e) => e.id) }) + '\n',
);
process.exit(0);
