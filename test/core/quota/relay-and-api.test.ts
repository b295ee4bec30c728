// The relay and the API share one admission function, so the same publish sequence gets the same answers through
// both. The relay side is a real WebSocket client; the API side calls app.admit as the API routes do (via 'api',
// with the NIP-98 signer as the authenticated pubkey), since the HTTP routes are built separately (issue 5).
import t from 'tap';
import type { NostrEvent } from 'nostr-tools/pure';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { setUserStatus } from '../../../src/core/accounts/account-admin.js';
import type { Admission } from '../../../src/core/admission/contract.js';

// The clock stands still at 09:30 (UTC) today: relative to now, so usage rows land in a month with a partition.
const today = new Date();
const clock = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), 9, 30) / 1000;
const app = await startTestApp(t, { redis: true, now: () => clock });

type Answer = [boolean, string];

/** The publish sequence for one author: posts, free kinds, retries, invalid events, over the limit. */
function sequence(k: Key): NostrEvent[] {
  const at = (content: string, kind = 1, extra: { tags?: string[][]; created_at?: number } = {}) =>
    buildEvent(k.sk, { kind, content, created_at: extra.created_at ?? clock, tags: extra.tags ?? [] });
  const n1 = at('one');
  const n2 = at('two');
  const badSig = { ...at('forged'), sig: '0'.repeat(128) };
  return [
    n1,
    at('{"name":"x"}', 0),
    n1,
    n2,
    at('+', 7, { tags: [['e', n1.id]] }),
    badSig,
    at('three'),
    at('four'),
    at('', 6, { tags: [['e', n1.id]] }),
    n2,
    at('typing', 20001),
    at('gone', 1, { tags: [['expiration', String(clock - 10)]] }),
    at('later', 1, { created_at: clock + 3600 }),
    at('article', 30023, { tags: [['d', 'a']] }),
  ];
}

function fromAdmission(r: Admission): Answer {
  switch (r.status) {
    case 'accepted':
    case 'duplicate':
      return [true, r.message];
    case 'rejected':
      return [false, r.rejection.message];
  }
}

t.test('the same sequence gives the same answers through the relay and through the API', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const viaRelay = newKey();
  const viaApi = newKey();
  const relayAnswers: Answer[] = [];
  for (const ev of sequence(viaRelay)) relayAnswers.push(await c.publish(ev));
  const apiAnswers: Answer[] = [];
  for (const ev of sequence(viaApi))
    apiAnswers.push(
      fromAdmission(await app.admit(JSON.parse(JSON.stringify(ev)), { via: 'api', authed: new Set([viaApi.pk]) })),
    );

  t.same(apiAnswers, relayAnswers);
  t.same(
    relayAnswers.map(([ok, m]) => `${ok} ${m.split(':')[0]}`),
    [
      'true ',
      'true ',
      'true duplicate',
      'true ',
      'true ',
      'false invalid',
      'true ',
      'false rate-limited',
      'false rate-limited',
      'true duplicate',
      'true ',
      'false invalid',
      'false invalid',
      'false rate-limited',
    ],
    'the expected answers',
  );

  for (const k of [viaRelay, viaApi])
    await setUserStatus(app.accountAdmin, (await app.accounts.forPubkey(k.pk)).id, 'suspended', 'admin');
  const relayBlocked = await c.publish(buildEvent(viaRelay.sk, { created_at: clock, content: 'x' }));
  const apiBlocked = fromAdmission(
    await app.admit(buildEvent(viaApi.sk, { created_at: clock, content: 'x' }), {
      via: 'api',
      authed: new Set([viaApi.pk]),
    }),
  );
  t.same(apiBlocked, relayBlocked);
  t.same(relayBlocked, [false, 'blocked: this account is suspended']);
});
