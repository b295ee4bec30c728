// NIP-42 with AUTH_REQUIRED_FOR_WRITE=true, end to end: the challenge on connect, AUTH checked (kind, challenge,
// relay URL after normalisation, time window, signature), EVENT refused before AUTH (auth-required:) and for
// another pubkey than the authenticated ones (restricted:). Reading needs no AUTH. Alice and Bob are clients.
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import { authenticate } from '../helpers/nip42.js';
import { startTestApp } from '../helpers/app.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait-for.js';

const app = await startTestApp(t, { redis: true, env: { AUTH_REQUIRED_FOR_WRITE: 'true' } });

const challengeOf = (c: RawClient): Promise<string> =>
  waitFor('the AUTH challenge', () => c.received.find((x) => x[0] === 'AUTH')?.[1] as string | undefined);

function authEvent(k: Key, parts: { challenge: string; relay?: string; kind?: number; created_at?: number }) {
  return buildEvent(k.sk, {
    kind: parts.kind ?? 22242,
    created_at: parts.created_at ?? Math.floor(Date.now() / 1000),
    tags: [
      ['relay', parts.relay ?? app.relayUrl],
      ['challenge', parts.challenge],
    ],
    content: '',
  });
}

async function auth(c: RawClient, ev: { id: string }): Promise<[boolean, string]> {
  const answer = c.next((m) => m[0] === 'OK' && m[1] === ev.id);
  c.send(['AUTH', ev]);
  const m = await answer;
  return [m[2] as boolean, m[3] as string];
}

t.test('an EVENT before AUTH is refused with auth-required:, and reading needs no AUTH', async (t) => {
  const alice = newKey();
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  t.match(await challengeOf(c), /^[0-9a-f]{32}$/);
  t.same(await c.publish(buildEvent(alice.sk)), [
    false,
    'auth-required: this relay only accepts events after AUTH (NIP-42)',
  ]);
  const { events, closed } = await c.req('r', { kinds: [1], limit: 1 });
  t.same([events.length >= 0, closed], [true, undefined], 'REQ is served without AUTH');
});

t.test('bad AUTH events are refused with the reason, and authenticate nobody', async (t) => {
  const alice = newKey();
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const challenge = await challengeOf(c);
  const now = Math.floor(Date.now() / 1000);
  t.same(await auth(c, authEvent(alice, { challenge: 'f'.repeat(32) })), [
    false,
    'invalid: auth event challenge does not match',
  ]);
  t.same(await auth(c, authEvent(alice, { challenge, relay: 'wss://elsewhere.example/' })), [
    false,
    'invalid: auth event relay tag does not match this relay',
  ]);
  t.same(await auth(c, authEvent(alice, { challenge, kind: 1 })), [
    false,
    'invalid: auth event must be kind 22242, got 1',
  ]);
  // the clock may tick between building the event and checking it: 3600 or 3601 s
  let [accepted, reason] = await auth(c, authEvent(alice, { challenge, created_at: now - 3600 }));
  t.equal(accepted, false);
  t.match(reason, /^invalid: auth event created_at is 360[01] s in the past, the limit is 600 s$/);
  [accepted, reason] = await auth(c, authEvent(alice, { challenge, created_at: now + 3600 }));
  t.equal(accepted, false);
  t.match(reason, /^invalid: auth event created_at is (3599|3600) s in the future, the limit is 600 s$/);
  const forged = { ...authEvent(alice, { challenge }), sig: '0'.repeat(128) };
  t.same(await auth(c, forged), [false, 'invalid: signature is invalid']);
  t.same(
    await c.publish(buildEvent(alice.sk)),
    [false, 'auth-required: this relay only accepts events after AUTH (NIP-42)'],
    'still not authenticated',
  );
});

t.test('after AUTH, Alice publishes her own events; events signed by Bob are restricted:', async (t) => {
  const alice = newKey();
  const bob = newKey();
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const challenge = await challengeOf(c);
  // The relay tag as clients send it (nostr-tools normalises with a trailing slash) or without it: both match.
  t.same(await auth(c, authEvent(alice, { challenge, relay: app.relayUrl.replace(/\/$/, '') })), [true, '']);
  t.same(await c.publish(buildEvent(alice.sk, { content: 'hello' })), [true, '']);
  t.same(await c.publish(buildEvent(bob.sk, { content: 'not Alice' })), [
    false,
    'restricted: events must be signed by the authenticated pubkey',
  ]);
  t.same(await auth(c, authEvent(bob, { challenge })), [true, ''], 'a second pubkey on the same connection');
  t.same(await c.publish(buildEvent(bob.sk, { content: 'now Bob may' })), [true, '']);
});

t.test('nostr-tools answers the challenge with relay.auth and then publishes', async (t) => {
  const alice = newKey();
  const relay = await Relay.connect(app.relayUrl);
  t.teardown(() => relay.close());
  t.equal(await authenticate(relay, alice.sk), '');
  t.equal(await relay.publish(buildEvent(alice.sk, { content: 'via nostr-tools' })), '');
});

t.test('the API face is not asked for NIP-42: its caller is the NIP-98 signer', async (t) => {
  const alice = newKey();
  const r = await app.admit(buildEvent(alice.sk), { via: 'api', authed: new Set([alice.pk]) });
  t.equal(r.status, 'accepted');
});
