import t from 'tap';
import { makeAuthEvent } from 'nostr-tools/nip42';
import { finalizeEvent } from 'nostr-tools/pure';
import * as nip01 from '../../src/nips/nip01.js';
import * as nip42 from '../../src/nips/nip42.js';
import type { AuthEventOptions } from '../../src/nips/nip42.js';
import type { Result } from '../../src/nips/result.js';
import { buildEvent, newKey } from '../helpers/events.js';

await nip01.initVerifier();

const alice = newKey();
const now = 1_700_000_000;
const opts: AuthEventOptions = {
  challenge: 'c0ffee',
  relayUrl: 'wss://relay.nostrx.example',
  nowSeconds: now,
  windowSeconds: 600,
};
const messageOf = (r: Result<unknown>): string | undefined => (r.ok ? undefined : r.rejection.message);

function authEvent(parts: { created_at?: number; tags?: string[][]; kind?: number } = {}) {
  return buildEvent(alice.sk, {
    kind: parts.kind ?? 22242,
    created_at: parts.created_at ?? now,
    tags: parts.tags ?? [
      ['relay', 'wss://relay.nostrx.example/'],
      ['challenge', 'c0ffee'],
    ],
    content: '',
  });
}

t.test('makeChallenge returns 16 random bytes as hex', async (t) => {
  const a = nip42.makeChallenge();
  t.match(a, /^[0-9a-f]{32}$/);
  t.not(a, nip42.makeChallenge());
});

t.test('verifyAuthEvent accepts an event made by nostr-tools makeAuthEvent', async (t) => {
  const template = makeAuthEvent('wss://relay.nostrx.example/', 'c0ffee');
  const signed = finalizeEvent({ ...template, created_at: now }, alice.sk);
  const raw: unknown = JSON.parse(JSON.stringify(signed));
  t.same(nip42.verifyAuthEvent(raw, opts), { ok: true, value: alice.pk });
});

t.test('verifyAuthEvent compares the relay tag after normalisation', async (t) => {
  for (const relay of ['wss://relay.nostrx.example', 'wss://RELAY.nostrx.example:443/', 'relay.nostrx.example']) {
    const r = nip42.verifyAuthEvent(
      authEvent({
        tags: [
          ['relay', relay],
          ['challenge', 'c0ffee'],
        ],
      }),
      opts,
    );
    t.same(r, { ok: true, value: alice.pk }, relay);
  }
});

t.test('verifyAuthEvent accepts created_at at both edges of the window', async (t) => {
  t.equal(nip42.verifyAuthEvent(authEvent({ created_at: now - 600 }), opts).ok, true, '600 s before');
  t.equal(nip42.verifyAuthEvent(authEvent({ created_at: now + 600 }), opts).ok, true, '600 s after');
});

t.test('verifyAuthEvent rejects each failed check with its own invalid: message', async (t) => {
  const good = authEvent();
  const cases: [unknown, string][] = [
    ['nope', 'invalid: event must be a JSON object'],
    [{ ...good, sig: 'x' }, 'invalid: sig must be 128 lowercase hex characters'],
    [authEvent({ kind: 1 }), 'invalid: auth event must be kind 22242, got 1'],
    [authEvent({ created_at: now + 601 }), 'invalid: auth event created_at is 601 s in the future, the limit is 600 s'],
    [authEvent({ created_at: now - 601 }), 'invalid: auth event created_at is 601 s in the past, the limit is 600 s'],
    [authEvent({ tags: [['relay', 'wss://relay.nostrx.example/']] }), 'invalid: auth event has no challenge tag'],
    [
      authEvent({
        tags: [
          ['relay', 'wss://relay.nostrx.example/'],
          ['challenge', 'other'],
        ],
      }),
      'invalid: auth event challenge does not match',
    ],
    [authEvent({ tags: [['challenge', 'c0ffee']] }), 'invalid: auth event has no relay tag'],
    [
      authEvent({
        tags: [
          ['relay', 'wss://other.example/'],
          ['challenge', 'c0ffee'],
        ],
      }),
      'invalid: auth event relay tag does not match this relay',
    ],
    [
      authEvent({
        tags: [
          ['relay', 'wss://relay.nostrx.example/other'],
          ['challenge', 'c0ffee'],
        ],
      }),
      'invalid: auth event relay tag does not match this relay',
    ],
    [
      authEvent({
        tags: [
          ['relay', 'http://[bad'],
          ['challenge', 'c0ffee'],
        ],
      }),
      'invalid: auth event relay tag does not match this relay',
    ],
    [{ ...good, content: 'changed' }, 'invalid: id does not match the event hash'],
    [{ ...good, sig: authEvent({ created_at: now - 1 }).sig }, 'invalid: signature is invalid'],
  ];
  for (const [raw, message] of cases) t.equal(messageOf(nip42.verifyAuthEvent(raw, opts)), message, message);
  t.equal(
    messageOf(nip42.verifyAuthEvent(good, { ...opts, relayUrl: '::not a url' })),
    'invalid: auth event relay tag does not match this relay',
    'an unparsable configured relay URL matches nothing',
  );
});
