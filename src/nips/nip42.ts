/** NIP-42 client authentication: challenges and kind-22242 AUTH events. */
import { randomBytes } from 'node:crypto';
import { normalizeURL } from 'nostr-tools/utils';
import { createdAtOutside, firstTagValue, parseEvent, verifySignature } from './nip01.js';
import { ClientAuth } from './kinds.js';
import { fail, failWith, ok } from './result.js';
import type { Result } from './result.js';

/** 16 random bytes as 32 lowercase hex characters. */
export function makeChallenge(): string {
  return randomBytes(16).toString('hex');
}

export interface AuthEventOptions {
  /** The challenge this connection sent. */
  challenge: string;
  /** The relay's public URL as clients see it. */
  relayUrl: string;
  nowSeconds: number;
  /** How far created_at may be from now, on either side. */
  windowSeconds: number;
}

function normalized(url: string): string | undefined {
  try {
    return normalizeURL(url);
  } catch {
    return undefined;
  }
}

/**
 * Checks an AUTH event and returns the authenticated pubkey. Every failure is 'invalid:' with
 * a specific text. The cheap checks run first; the signature is checked last. The `relay` tag
 * is compared after normalizeURL on both sides (clients add a trailing slash).
 * Requires nip01.initVerifier() to have run.
 */
export function verifyAuthEvent(raw: unknown, opts: AuthEventOptions): Result<string> {
  const parsed = parseEvent(raw);
  if (!parsed.ok) return parsed;
  const ev = parsed.value;
  if (ev.kind !== ClientAuth) return fail('invalid', `auth event must be kind ${ClientAuth}, got ${ev.kind}`);
  const outside = createdAtOutside(ev.created_at, opts.nowSeconds, opts.windowSeconds, opts.windowSeconds);
  if (outside) return fail('invalid', `auth event created_at is ${outside}`);
  const challenge = firstTagValue(ev, 'challenge');
  if (challenge === undefined) return fail('invalid', 'auth event has no challenge tag');
  if (challenge !== opts.challenge) return fail('invalid', 'auth event challenge does not match');
  const relay = firstTagValue(ev, 'relay');
  if (relay === undefined) return fail('invalid', 'auth event has no relay tag');
  const want = normalized(opts.relayUrl);
  const got = normalized(relay);
  if (got === undefined || want === undefined || got !== want) {
    return fail('invalid', 'auth event relay tag does not match this relay');
  }
  const checked = verifySignature(ev);
  if (!checked.ok) return failWith(checked.rejection);
  return ok(checked.value.pubkey);
}
