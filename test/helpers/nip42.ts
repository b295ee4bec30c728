// NIP-42 with nostr-tools' Relay as a client: the relay sends its challenge right after the connection opens, but
// on a loaded machine that message can come after Relay.connect() resolves, and relay.auth() throws when it has
// no challenge yet. So a test waits for the challenge itself, never for a fixed time.
import type { Relay } from 'nostr-tools/relay';
import { finalizeEvent } from 'nostr-tools/pure';
import { waitFor } from './wait-for.js';

/** The challenge nostr-tools keeps (a TypeScript-private field). */
const challengeOf = (relay: Relay): string | undefined => (relay as unknown as { challenge?: string }).challenge;

/** Waits for the relay's challenge, then answers it as `sk`; resolves with the relay's OK message. */
export async function authenticate(relay: Relay, sk: Uint8Array): Promise<string> {
  await waitFor('the AUTH challenge', async () => challengeOf(relay) !== undefined);
  return relay.auth(async (tmpl) => finalizeEvent(tmpl, sk));
}
