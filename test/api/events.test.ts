// Publishing through the API: the same admission as the relay (same answers, same quota), then forwarding to an
// upstream relay (a second instance of this service), with each relay's outcome and timings in the record.
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import { authenticate } from '../helpers/nip42.js';
import { setUserStatus } from '../../src/core/accounts/account-admin.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';
import { storedEvents } from '../helpers/stored-events.js';
import { waitFor } from '../helpers/wait-for.js';

// The upstream relay counts no kind as a post, so its own quota never refuses what we forward.
const upstream = await startTestApp(t, { env: { POST_KINDS: '9999' } });
const app = await startTestApp(t, {
  redis: true,
  env: {
    UPSTREAM_RELAYS: upstream.relayUrl,
    ALLOW_PRIVATE_RELAYS: 'true',
    FORWARD_POLL_MS: '50',
    FORWARD_BACKOFF_BASE_MS: '50',
  },
});
const api = new ApiClient(app.url);
const now = () => Math.floor(Date.now() / 1000);

const publish = (key: Key, event: unknown, source?: unknown) =>
  api.signed(key, 'POST', '/v1/events', { body: source ? { event, source } : { event } });

t.test('Alice publishes a note: 202, then the record shows the upstream relay took it, with timings', async (t) => {
  const alice = newKey();
  const ev = buildEvent(alice.sk, { content: 'cross-posted from X' });
  const source = {
    platform: 'twitter',
    tweet_id: '1790000000000000001',
    tweet_url: 'https://x.com/alice/status/1790000000000000001',
    tweet_text: 'cross-posted from X',
    username: 'alice',
  };
  const r = await publish(alice, ev, source);
  t.equal(r.status, 202);
  t.equal(r.body.result, 'accepted');
  t.equal(r.body.event_id, ev.id);
  t.equal(r.body.message, '');
  t.same(r.body.event.event, ev, 'the stored event is exactly the signed one');
  t.same(r.body.event.source, source);
  t.equal(r.body.event.relays.length, 1);
  t.equal(r.body.event.relays[0].relay_url, upstream.relayUrl);

  const done = await waitFor('the upstream relay to take the event, and the event totals to follow', async () => {
    const g = await api.signed(alice, 'GET', `/v1/events/${ev.id}`);
    return g.body.relays?.[0]?.status === 'published' && g.body.status === 'published' ? g.body : undefined;
  });
  t.equal(done.status, 'published');
  t.equal(done.successful_relays, 1);
  const outcome = done.relays[0];
  t.ok(outcome.attempts >= 1);
  t.type(outcome.total_time_ms, 'number');
  t.type(outcome.publish_time_ms, 'number');
  t.ok(outcome.attempted_at && outcome.completed_at);
  t.equal(outcome.next_attempt_at, null, 'a finished relay has no next attempt');
  t.ok(outcome.relay_response, "the relay's answer is recorded");

  const reader = await Relay.connect(upstream.relayUrl);
  t.teardown(() => reader.close());
  const seen = await storedEvents(reader, { ids: [ev.id] });
  t.equal(seen.length, 1, 'the upstream relay stores it');
});

t.test('publishing the same event again returns the existing record', async (t) => {
  const alice = newKey();
  const ev = buildEvent(alice.sk);
  const first = await publish(alice, ev);
  t.equal(first.status, 202);
  const again = await publish(alice, ev);
  t.equal(again.status, 200);
  t.equal(again.body.result, 'duplicate');
  t.equal(again.body.message, 'duplicate: already have this event');
  t.equal(again.body.event.id, ev.id);
  t.equal(again.body.event.received_at, first.body.event.received_at);
  const rows = await app.db.knex('nostr_events').where({ event_id: ev.id }).count<{ n: string }[]>({ n: '*' });
  t.equal(Number(rows[0]?.n), 1);
});

t.test('an event signed by another pubkey is refused: 403, nothing stored', async (t) => {
  const alice = newKey();
  const bob = newKey();
  const ev = buildEvent(bob.sk);
  const r = await publish(alice, ev);
  t.equal(r.status, 403);
  t.equal(r.body.error.code, 'not_author');
  t.notOk(await app.db.knex('nostr_events').where({ event_id: ev.id }).first());
});

t.test("invalid events answer 400 with the relay's invalid: message", async (t) => {
  const alice = newKey();
  const good = buildEvent(alice.sk);
  const badSig = { ...good, sig: good.sig.slice(0, -2) + (good.sig.endsWith('00') ? '11' : '00') };
  let r = await publish(alice, badSig);
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'event_invalid');
  t.equal(r.body.error.message, 'invalid: signature is invalid');
  r = await publish(alice, { ...buildEvent(alice.sk), content: 'changed' });
  t.equal(r.body.error.message, 'invalid: id does not match the event hash');
  r = await publish(alice, buildEvent(alice.sk, { created_at: now() + 3600 }));
  t.equal(r.status, 400);
  t.match(r.body.error.message, /^invalid: created_at is \d+ s in the future/);
});

t.test('over the quota: 429 with the quota facts and Retry-After; free kinds still pass', async (t) => {
  const alice = newKey();
  for (let i = 0; i < 3; i++)
    t.equal((await publish(alice, buildEvent(alice.sk, { content: `post ${i}` }))).status, 202);
  const r = await publish(alice, buildEvent(alice.sk, { content: 'post 4' }));
  t.equal(r.status, 429);
  t.equal(r.body.error.code, 'quota_exceeded');
  t.match(r.body.error.message, /^rate-limited: daily limit of 3 posts reached on the basic plan/);
  t.match(r.body.error.quota, { plan: 'basic', period: 'daily', limit: 3, used: 3 });
  t.ok(Date.parse(r.body.error.quota.resets_at) > Date.now());
  const retryAfter = Number(r.headers.get('retry-after'));
  t.ok(retryAfter > 0 && retryAfter <= 86_400, `Retry-After ${retryAfter}`);
  const profile = buildEvent(alice.sk, { kind: 0, content: '{"name":"alice"}' });
  t.equal((await publish(alice, profile)).status, 202, 'metadata is free');
  const quota = await api.signed(alice, 'GET', '/v1/me/quota');
  t.match(quota.body.daily, { used: 3, limit: 3, remaining: 0 });
});

t.test('the relay and the API give the same answers to the same sequence', async (t) => {
  const viaRelay = newKey();
  const viaApi = newKey();
  const relay = await RawClient.connect(app.relayUrl);
  t.teardown(() => relay.close());
  const relayAnswers: string[] = [];
  const apiAnswers: string[] = [];
  const sequence = (key: Key) => {
    const first = buildEvent(key.sk, { content: 'one' });
    return [
      first,
      first,
      buildEvent(key.sk, { content: 'two' }),
      buildEvent(key.sk, { content: 'three' }),
      buildEvent(key.sk, { content: 'four' }),
    ];
  };
  for (const ev of sequence(viaRelay)) {
    const [ok, message] = await relay.publish(ev);
    relayAnswers.push(ok ? message.split(':')[0] || 'accepted' : (message.split(':')[0] ?? ''));
  }
  for (const ev of sequence(viaApi)) {
    const r = await publish(viaApi, ev);
    apiAnswers.push(
      r.status === 202 ? 'accepted' : r.status === 200 ? 'duplicate' : r.body.error.message.split(':')[0],
    );
  }
  t.same(relayAnswers, ['accepted', 'duplicate', 'accepted', 'accepted', 'rate-limited']);
  t.same(apiAnswers, relayAnswers);
});

t.test('an event first sent to the relay is a duplicate through the API', async (t) => {
  const alice = newKey();
  const ev = buildEvent(alice.sk);
  const relay = await RawClient.connect(app.relayUrl);
  t.teardown(() => relay.close());
  t.same(await relay.publish(ev), [true, '']);
  const r = await publish(alice, ev);
  t.equal(r.status, 200);
  t.equal(r.body.result, 'duplicate');
  t.equal(r.body.event.id, ev.id, "and the record is Alice's to see");
});

t.test('ephemeral events are accepted and not stored', async (t) => {
  const alice = newKey();
  const r = await publish(alice, buildEvent(alice.sk, { kind: 20001 }));
  t.equal(r.status, 202);
  t.equal(r.body.event, null);
});

t.test('a suspended account is refused with 403', async (t) => {
  const alice = newKey();
  t.equal((await publish(alice, buildEvent(alice.sk))).status, 202);
  const user = await app.db.knex('users').where({ nostr_public_key: alice.pk }).first('id');
  await setUserStatus(app.accountAdmin, user.id, 'suspended', 'test');
  const r = await publish(alice, buildEvent(alice.sk, { content: 'again' }));
  t.equal(r.status, 403);
  t.equal(r.body.error.code, 'event_blocked');
  t.equal(r.body.error.message, 'blocked: this account is suspended');
});

t.test('a session can publish too', async (t) => {
  const alice = newKey();
  const token = await api.session(alice);
  const r = await api.bearer(token, 'POST', '/v1/events', { body: { event: buildEvent(alice.sk) } });
  t.equal(r.status, 202);
  const bob = newKey();
  const forged = await api.bearer(token, 'POST', '/v1/events', { body: { event: buildEvent(bob.sk) } });
  t.equal(forged.status, 403, "a session cannot publish someone else's event");
});

t.test('GET /v1/events pages through your events newest first, and filters by kind, status and time', async (t) => {
  const advanced = newKey();
  // An advanced (unlimited) user, so the quota does not interfere.
  await publish(advanced, buildEvent(advanced.sk, { kind: 0, content: '{}' }));
  const user = await app.db.knex('users').where({ nostr_public_key: advanced.pk }).first('id');
  const { changePlan } = await import('../../src/core/accounts/account-admin.js');
  await changePlan(app.accountAdmin, user.id, 'advanced', 'test');
  const before = new Date();
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) {
    const ev = buildEvent(advanced.sk, { content: `note ${i}`, created_at: now() - i });
    t.equal((await publish(advanced, ev)).status, 202);
    ids.push(ev.id);
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const q: string = `/v1/events?kind=1&limit=3${cursor ? `&cursor=${cursor}` : ''}`;
    const r = await api.signed(advanced, 'GET', q);
    t.equal(r.status, 200);
    seen.push(...r.body.events.map((e: { id: string }) => e.id));
    cursor = r.body.next_cursor;
    pages++;
  } while (cursor && pages < 10);
  t.same(seen, [...ids].reverse(), 'every note once, newest received first');
  t.equal(pages, 3);

  const all = await api.signed(advanced, 'GET', '/v1/events?limit=50');
  t.equal(all.body.events.length, 8, 'the metadata event too');
  const meta = await api.signed(advanced, 'GET', '/v1/events?kind=0');
  t.equal(meta.body.events.length, 1);
  const later = await api.signed(advanced, 'GET', `/v1/events?from=${encodeURIComponent(before.toISOString())}`);
  t.equal(later.body.events.length, 7, 'from filters on the time received');
  const earlier = await api.signed(advanced, 'GET', `/v1/events?to=${encodeURIComponent(before.toISOString())}`);
  t.equal(earlier.body.events.length, 1);

  await waitFor('every event to be published upstream', async () => {
    const r = await api.signed(advanced, 'GET', '/v1/events?status=published&limit=50');
    return r.body.events.length === 8 ? r : undefined;
  });
  t.equal((await api.signed(advanced, 'GET', '/v1/events?status=failed')).body.events.length, 0);
  const badCursor = await api.signed(advanced, 'GET', '/v1/events?cursor=bm90LWEtY3Vyc29y');
  t.equal(badCursor.status, 400);
  t.equal(badCursor.body.error.field, 'cursor');
});

t.test("GET /v1/events/:id: another user's event is 403, an unknown one 404", async (t) => {
  const alice = newKey();
  const bob = newKey();
  const ev = buildEvent(bob.sk);
  t.equal((await publish(bob, ev)).status, 202);
  const r = await api.signed(alice, 'GET', `/v1/events/${ev.id}`);
  t.equal(r.status, 403);
  t.equal(r.body.error.code, 'not_your_event');
  t.notOk(r.text.includes(bob.pk), 'nothing of the event leaks');
  const unknown = await api.signed(alice, 'GET', `/v1/events/${'0'.repeat(64)}`);
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'event_not_found');
});

t.test(
  'Dave publishes an event that goes nowhere: its record says not_forwarded, not published, and why',
  async (t) => {
    // NIP-70: stored here, forwarded to no upstream relay
    const dave = newKey();
    const ev = buildEvent(dave.sk, { content: 'for this relay only', tags: [['-']] });
    const relay = await Relay.connect(app.relayUrl);
    t.teardown(() => relay.close());
    await authenticate(relay, dave.sk);
    await relay.publish(ev);
    const r = await api.signed(dave, 'GET', `/v1/events/${ev.id}`);
    t.equal(r.status, 200);
    t.equal(r.body.status, 'not_forwarded');
    t.equal(r.body.total_relays, 0);
    t.match(r.body.failure_reason, /^not forwarded: the event is protected \(NIP-70\)/);
    const listed = await api.signed(dave, 'GET', '/v1/events?status=not_forwarded');
    t.same(
      listed.body.events.map((e: { id: string }) => e.id),
      [ev.id],
    );
    const published = await api.signed(dave, 'GET', '/v1/events?status=published');
    t.same(published.body.events, [], 'not listed as published');
  },
);
