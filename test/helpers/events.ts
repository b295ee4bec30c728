// Test helpers for building signed events. Returns plain objects with exactly the seven NIP-01
// fields: nostr-tools' finalizeEvent marks its result with a cached "verified" symbol, which
// must not leak into tests of our own verification.
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from 'nostr-tools/pure';

export interface Key {
  sk: Uint8Array;
  pk: string;
}

export function newKey(): Key {
  const sk = generateSecretKey();
  return { sk, pk: getPublicKey(sk) };
}

export interface EventParts {
  kind?: number;
  created_at?: number;
  tags?: string[][];
  content?: string;
}

/** Signs an event; defaults: kind 1, created_at now, no tags, content 'hello'. */
export function buildEvent(sk: Uint8Array, partial: EventParts = {}): NostrEvent {
  const ev = finalizeEvent(
    {
      kind: partial.kind ?? 1,
      created_at: partial.created_at ?? Math.floor(Date.now() / 1000),
      tags: partial.tags ?? [],
      content: partial.content ?? 'hello',
    },
    sk,
  );
  return {
    id: ev.id,
    pubkey: ev.pubkey,
    created_at: ev.created_at,
    kind: ev.kind,
    tags: ev.tags,
    content: ev.content,
    sig: ev.sig,
  };
}
