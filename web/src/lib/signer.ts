// The user's NIP-07 signer (window.nostr, injected by an extension such as nos2x or Alby). The page never sees a
// secret key: it asks the signer for the public key and for signatures of the NIP-98 requests it makes.

interface UnsignedEvent {
  kind: number;
  created_at: number;
  tags: string[][];
  content: string;
}

interface SignedEvent extends UnsignedEvent {
  id: string;
  pubkey: string;
  sig: string;
}

export interface Nip07 {
  getPublicKey(): Promise<string>;
  signEvent(event: UnsignedEvent): Promise<SignedEvent>;
}

declare global {
  interface Window {
    nostr?: Nip07;
  }
}

/**
 * The signer, waiting up to `waitMs` for it: extensions inject window.nostr shortly after the page starts, so a
 * missing one right at load is not yet a missing one.
 */
export async function findSigner(waitMs = 1500): Promise<Nip07 | null> {
  const until = Date.now() + waitMs;
  while (!window.nostr && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  return window.nostr ?? null;
}

export class NoSignerError extends Error {
  constructor() {
    super(
      'No Nostr signer found. Install a NIP-07 signer extension (nos2x, Alby or another), allow it on this site, then try again.',
    );
  }
}
