// NIP-01 through real clients: Alice publishes with nostr-tools' Relay, Bob reads with it; protocol-level
// answers (NOTICE, CLOSED) are checked with a bare WebSocket client.
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import { authenticate } from '../helpers/nip42.js';
import type { NostrEvent } from 'nostr-tools/pure';
import { startTestApp } from '../helpers/app.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';
import { storedEvents } from '../helpers/stored-events.js';
import { waitFor } from '../helpers/wait-for.js';

const app = await startTestApp(t, {
  env: {
    MAX_SUBSCRIPTIONS: '3',
    MAX_FILTERS: '2',
    MAX_EVENT_TAGS: '10',
    MAX_CONTENT_LENGTH: '100',
    MAX_MESSAGE_BYTES: '4096',
  },
  plans: { basic: { daily: -1 } },
});
const now = () => Math.floor(Date.now() / 1000);

t.test('Alice publishes a note and Bob reads it back exactly as it was signed', async (t) => {
  const alice = newKey();
  const relay = await Relay.connect(app.relayUrl);
  t.teardown(() => relay.close());
  const ev = buildEvent(alice.sk, {
    content: 'line\n"quoted" \\ emoji 🎉',
    tags: [
      ['t', 'nostr'],
      ['client', 'nostrx', 'x'],
    ],
  });
  t.equal(await relay.publish(ev), '');
  const bob = await Relay.connect(app.relayUrl);
  t.teardown(() => bob.close());
  const got = await storedEvents(bob, { ids: [ev.id] });
  t.equal(got.length, 1);
  t.same(JSON.parse(JSON.stringify(got[0])), ev);
});

t.test('a second copy of the same event is answered duplicate and stored once', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const ev = buildEvent(newKey().sk);
  t.same(await c.publish(ev), [true, '']);
  t.same(await c.publish(ev), [true, 'duplicate: already have this event']);
  const { events } = await c.req('dup', { ids: [ev.id] });
  t.equal(events.length, 1);
});

t.test('malformed events are refused with invalid: and the reason', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const key = newKey();
  const good = buildEvent(key.sk);
  const badSig = { ...good, sig: good.sig.slice(0, -2) + (good.sig.endsWith('00') ? '11' : '00') };
  let [accepted, message] = await c.publish(badSig);
  t.equal(accepted, false);
  t.equal(message, 'invalid: signature is invalid');

  const badId = { ...buildEvent(key.sk), content: 'changed after signing' };
  [accepted, message] = await c.publish(badId);
  t.equal(accepted, false);
  t.equal(message, 'invalid: id does not match the event hash');

  const shape = { ...buildEvent(key.sk), kind: 'one' };
  [accepted, message] = await c.publish(shape);
  t.equal(message, 'invalid: kind must be an integer from 0 to 65535');

  const tooManyTags = buildEvent(key.sk, { tags: Array.from({ length: 11 }, (_, i) => ['t', `x${i}`]) });
  [accepted, message] = await c.publish(tooManyTags);
  t.equal(message, 'invalid: event has 11 tags, the limit is 10');

  const tooLong = buildEvent(key.sk, { content: 'x'.repeat(101) });
  [accepted, message] = await c.publish(tooLong);
  t.equal(message, 'invalid: content is 101 characters, the limit is 100');

  const future = buildEvent(key.sk, { created_at: now() + 3600 });
  [accepted, message] = await c.publish(future);
  t.match(message, /^invalid: created_at is 360\d s in the future, the limit is 900 s$/);

  const ancient = buildEvent(key.sk, { created_at: now() - 4 * 365 * 86400 });
  [accepted, message] = await c.publish(ancient);
  t.match(message, /^invalid: created_at is \d+ s in the past, the limit is 94608000 s$/);

  const nul = buildEvent(key.sk, { content: 'a\u0000b' });
  [accepted, message] = await c.publish(nul);
  t.equal(message, 'invalid: event contains a NUL (U+0000) character');

  // a lone surrogate has no UTF-8 form: stored it would come back changed, or be refused by jsonb in a tag
  for (const parts of [{ content: 'a\ud800b' }, { tags: [['t', '\udc00']] }]) {
    [accepted, message] = await c.publish(buildEvent(key.sk, parts));
    t.equal(message, 'invalid: event contains an unpaired UTF-16 surrogate (not a Unicode character)');
  }
  t.same((await c.publish(buildEvent(newKey().sk, { content: 'a pair is fine: 😀' })))[0], true);

  const longD = buildEvent(key.sk, { kind: 30023, tags: [['d', 'é'.repeat(300)]] });
  [accepted, message] = await c.publish(longD);
  t.equal(message, 'invalid: d tag is 600 bytes, the limit is 512');

  const { events } = await c.req('none', { authors: [key.pk] });
  t.equal(events.length, 0, 'nothing refused was stored');
});

t.test('replaceable events keep only the newest version, ties to the lowest id', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const key = newKey();
  const ts = now() - 100;
  const v1 = buildEvent(key.sk, { kind: 0, created_at: ts, content: '{"name":"v1"}' });
  const v2 = buildEvent(key.sk, { kind: 0, created_at: ts + 10, content: '{"name":"v2"}' });
  t.same(await c.publish(v1), [true, '']);
  t.same(await c.publish(v2), [true, '']);
  t.same(await c.publish(buildEvent(key.sk, { kind: 0, created_at: ts + 5, content: '{"name":"old"}' })), [
    true,
    'duplicate: a newer version of this event is already stored',
  ]);
  let { events } = await c.req('meta', { authors: [key.pk], kinds: [0] });
  t.same(events, [v2]);

  // equal created_at: the lower id stays
  const a = buildEvent(key.sk, { kind: 3, created_at: ts, content: 'a' });
  const b = buildEvent(key.sk, { kind: 3, created_at: ts, content: 'b' });
  const [low, high] = a.id < b.id ? [a, b] : [b, a];
  await c.publish(high);
  await c.publish(low);
  ({ events } = await c.req('contacts', { authors: [key.pk], kinds: [3] }));
  t.same(events, [low]);
  t.same((await c.publish(high))[0], true, 'the higher id is not stored again');
  ({ events } = await c.req('contacts2', { authors: [key.pk], kinds: [3] }));
  t.same(events, [low]);
});

t.test('addressable events are replaced per d tag', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const key = newKey();
  const ts = now() - 50;
  const a1 = buildEvent(key.sk, { kind: 30023, created_at: ts, tags: [['d', 'a']], content: 'a1' });
  const a2 = buildEvent(key.sk, { kind: 30023, created_at: ts + 1, tags: [['d', 'a']], content: 'a2' });
  const b1 = buildEvent(key.sk, { kind: 30023, created_at: ts, tags: [['d', 'b']], content: 'b1' });
  for (const e of [a1, a2, b1]) t.same(await c.publish(e), [true, '']);
  const { events } = await c.req('art', { authors: [key.pk], kinds: [30023] });
  t.same((events as NostrEvent[]).map((e) => e.content).sort(), ['a2', 'b1']);
});

t.test('ephemeral events reach live subscribers and are never stored', async (t) => {
  const key = newKey();
  const reader = await RawClient.connect(app.relayUrl);
  const writer = await RawClient.connect(app.relayUrl);
  t.teardown(() => {
    reader.close();
    writer.close();
  });
  await reader.subscribe('live', { kinds: [20001], authors: [key.pk] });
  const ev = buildEvent(key.sk, { kind: 20001, content: 'typing…' });
  const delivered = reader.next((m) => m[0] === 'EVENT' && m[1] === 'live');
  t.same(await writer.publish(ev), [true, '']);
  t.same((await delivered)[2], ev);
  const { events } = await writer.req('later', { kinds: [20001], authors: [key.pk] });
  t.equal(events.length, 0);
});

t.test('REQ returns stored matches newest first, honours limit, tags, since/until and several filters', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const key = newKey();
  const other = newKey();
  const base = now() - 1000;
  const evs = Array.from({ length: 5 }, (_, i) =>
    buildEvent(key.sk, { created_at: base + i, tags: [['t', i % 2 ? 'odd' : 'even']], content: `n${i}` }),
  );
  const ref = buildEvent(other.sk, {
    created_at: base,
    tags: [
      ['e', evs[0]!.id],
      ['p', key.pk],
    ],
  });
  for (const e of [...evs, ref]) await c.publish(e);

  let r = await c.req('all', { authors: [key.pk] });
  t.same(
    (r.events as NostrEvent[]).map((e) => e.content),
    ['n4', 'n3', 'n2', 'n1', 'n0'],
  );
  r = await c.req('lim', { authors: [key.pk], limit: 2 });
  t.same(
    (r.events as NostrEvent[]).map((e) => e.content),
    ['n4', 'n3'],
  );
  r = await c.req('tag', { authors: [key.pk], '#t': ['odd'] });
  t.same(
    (r.events as NostrEvent[]).map((e) => e.content),
    ['n3', 'n1'],
  );
  r = await c.req('range', { authors: [key.pk], since: base + 1, until: base + 3 });
  t.same(
    (r.events as NostrEvent[]).map((e) => e.content),
    ['n3', 'n2', 'n1'],
  );
  r = await c.req('etag', { '#e': [evs[0]!.id] }, { '#p': [key.pk] });
  t.same(r.events, [ref], 'two filters matching the same event return it once');
  r = await c.req('or', { ids: [evs[0]!.id] }, { ids: [ref.id] });
  t.equal(r.events.length, 2);
});

t.test('REQs sent at once by many readers each get their own stored events, then EOSE', async (t) => {
  // the relay reads filters that arrive together in shared statements (core/events/query.ts): what each reader
  // gets must not depend on who else asked at the same moment
  const writer = await Relay.connect(app.relayUrl);
  t.teardown(() => writer.close());
  const base = now() - 500;
  const authors = Array.from({ length: 10 }, newKey);
  const notes = new Map<string, NostrEvent[]>();
  for (const [a, key] of authors.entries()) {
    const own = Array.from({ length: 4 }, (_, i) =>
      buildEvent(key.sk, { created_at: base + i, content: `a${a} n${i}`, tags: [['t', `reader${a}`]] }),
    );
    for (const ev of own) t.equal(await writer.publish(ev), '');
    notes.set(key.pk, own);
  }
  const readers = await Promise.all(authors.map(() => Relay.connect(app.relayUrl)));
  t.teardown(() => readers.forEach((r) => r.close()));
  const answers = await Promise.all(
    readers.map((r, a) =>
      a % 2 === 0
        ? storedEvents(r, { authors: [authors[a]!.pk], limit: 1 + (a % 4) })
        : storedEvents(r, { '#t': [`reader${a}`], limit: 3 }, { authors: [authors[a]!.pk], since: base + 3 }),
    ),
  );
  for (const [a, got] of answers.entries()) {
    const own = notes.get(authors[a]!.pk)!;
    const want = a % 2 === 0 ? own.slice(-(1 + (a % 4))).reverse() : own.slice(-3).reverse();
    t.same(
      got.map((e) => e.content),
      want.map((e) => e.content),
      `reader ${a}: own notes, newest first`,
    );
  }
});

t.test('a tag value with a NUL matches nothing, and costs no other reader their answer', async (t) => {
  // no stored event can hold a NUL (it is refused with invalid:), and PostgreSQL's text cannot carry one: sent to the
  // database, such a value failed the statement, and with it every REQ sharing the statement
  const writer = await Relay.connect(app.relayUrl);
  t.teardown(() => writer.close());
  const key = newKey();
  const note = buildEvent(key.sk, { content: 'nul neighbour', tags: [['t', 'nul-neighbour']] });
  t.equal(await writer.publish(note), '');
  const readers = await Promise.all(Array.from({ length: 8 }, () => Relay.connect(app.relayUrl)));
  t.teardown(() => readers.forEach((r) => r.close()));
  const answers = await Promise.all(
    readers.map((r, i) =>
      i % 2 === 0
        ? storedEvents(r, { '#t': ['nul\u0000value'] }, { '#x': ['a', '\u0000'] })
        : storedEvents(r, { authors: [key.pk] }, { '#t': ['nul-neighbour', 'other\u0000'] }),
    ),
  );
  for (const [i, got] of answers.entries()) {
    t.same(
      got.map((e) => e.id),
      i % 2 === 0 ? [] : [note.id],
      `reader ${i}`,
    );
  }
});

t.test('live matches arrive after EOSE until CLOSE, and a REQ with a used id replaces it', async (t) => {
  const key = newKey();
  const reader = await RawClient.connect(app.relayUrl);
  const writer = await RawClient.connect(app.relayUrl);
  t.teardown(() => {
    reader.close();
    writer.close();
  });
  await reader.subscribe('s', { authors: [key.pk], kinds: [1] });
  const first = buildEvent(key.sk, { content: 'live 1' });
  const got = reader.next((m) => m[0] === 'EVENT' && m[1] === 's');
  await writer.publish(first);
  t.same((await got)[2], first);

  // replace 's' with a filter on another kind: kind-1 events no longer arrive on it
  await reader.subscribe('s', { authors: [key.pk], kinds: [7] });
  const reaction = buildEvent(key.sk, { kind: 7, content: '+' });
  const gotReaction = reader.next((m) => m[0] === 'EVENT' && m[1] === 's');
  await writer.publish(buildEvent(key.sk, { content: 'not for s any more' }));
  await writer.publish(reaction);
  t.same((await gotReaction)[2], reaction);

  reader.send(['CLOSE', 's']);
  await writer.publish(buildEvent(key.sk, { kind: 7, content: 'after close' }));
  const { events } = await reader.req('probe', { ids: ['0'.repeat(64)] });
  t.same(events, []);
  t.notOk(reader.received.some((m) => m[0] === 'EVENT' && (m[2] as NostrEvent).content === 'after close'));
});

t.test('refused subscriptions get CLOSED with the reason', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  for (const id of ['a', 'b', 'c']) await c.subscribe(id, { kinds: [1], limit: 1 });
  let r = await c.req('d', { kinds: [1] });
  t.equal(r.closed, 'rate-limited: too many open subscriptions, the limit is 3');
  c.send(['CLOSE', 'a']);
  r = await c.subscribe('d', { kinds: [1], limit: 1 });
  t.equal(r.closed, undefined, 'a closed subscription frees its slot');

  r = await c.req('e', { kinds: [1] }, { kinds: [2] }, { kinds: [3] });
  t.equal(r.closed, 'invalid: REQ message has 3 filters, the limit is 2');
  r = await c.req('f', { authors: ['abc'] });
  t.match(r.closed, /^invalid: /);
  r = await c.req('g', { foo: 1 });
  t.equal(r.closed, 'invalid: unknown filter field "foo"');
  r = await c.req('x'.repeat(65), { kinds: [1] });
  t.equal(r.closed, 'invalid: subscription id is 65 characters, the limit is 64');
});

t.test('malformed messages get a NOTICE and the connection stays usable', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  let notice = c.nextOfType('NOTICE');
  c.send('not json');
  t.equal((await notice)[1], 'invalid: message is not valid JSON');
  notice = c.nextOfType('NOTICE');
  c.send(['HELLO', 1]);
  t.match((await notice)[1], /^invalid: unknown message type "HELLO"/);
  notice = c.nextOfType('NOTICE');
  c.send({ not: 'an array' });
  t.equal((await notice)[1], 'invalid: message must be a JSON array');
  notice = c.nextOfType('NOTICE');
  c.send(JSON.stringify(['EVENT', { content: 'x'.repeat(5000) }]));
  t.equal((await notice)[1], `invalid: message is ${5000 + 24} bytes, the limit is 4096`);
  t.same(await c.publish(buildEvent(newKey().sk)), [true, '']);
});

t.test('a message far over the size limit closes the connection with 1009, and the server lives on', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  c.send(JSON.stringify(['EVENT', { content: 'x'.repeat(4096 * 5) }]));
  await new Promise((r) => c.ws.once('close', r));
  t.equal(c.closed?.code, 1009);
  const again = await RawClient.connect(app.relayUrl);
  t.teardown(() => again.close());
  t.same(await again.publish(buildEvent(newKey().sk)), [true, '']);
});

t.test('NIP-09: an author deletes own events by id and address; others cannot', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const alice = newKey();
  const mallory = newKey();
  const note = buildEvent(alice.sk, { content: 'regret' });
  const keep = buildEvent(alice.sk, { content: 'keep' });
  const article = buildEvent(alice.sk, {
    kind: 30023,
    tags: [['d', 'post']],
    content: 'draft',
    created_at: now() - 10,
  });
  for (const e of [note, keep, article]) await c.publish(e);

  const forged = buildEvent(mallory.sk, { kind: 5, tags: [['e', keep.id]] });
  t.same(await c.publish(forged), [true, '']);
  const del = buildEvent(alice.sk, {
    kind: 5,
    tags: [
      ['e', note.id],
      ['a', `30023:${alice.pk}:post`],
      ['k', '1'],
    ],
  });
  t.same(await c.publish(del), [true, '']);

  const { events } = await c.req('after', { authors: [alice.pk] });
  t.same(
    (events as NostrEvent[]).map((e) => e.id).sort(),
    [keep.id, del.id].sort(),
    'deleted events are gone, the deletion itself stays',
  );
  t.same(
    await c.publish(note),
    [false, 'blocked: this event was deleted by its author (NIP-09)'],
    'sending a deleted event again does not bring it back',
  );
  const older = buildEvent(alice.sk, {
    kind: 30023,
    tags: [['d', 'post']],
    content: 'older draft',
    created_at: now() - 20,
  });
  t.same(await c.publish(older), [false, 'blocked: this event was deleted by its author (NIP-09)']);

  const deleteTheDeletion = buildEvent(alice.sk, { kind: 5, tags: [['e', del.id]] });
  await c.publish(deleteTheDeletion);
  const r = await c.req('del', { ids: [del.id] });
  t.equal(r.events.length, 1, 'a deletion aimed at a deletion has no effect');

  const later = buildEvent(alice.sk, { kind: 5, tags: [['e', keep.id]] });
  const aimedBefore = buildEvent(alice.sk, { kind: 5, tags: [['e', later.id]] });
  t.same(await c.publish(aimedBefore), [true, '']);
  t.same(await c.publish(later), [true, ''], 'nor on one that comes after it');
  t.equal((await c.req('later', { ids: [later.id] })).events.length, 1);
});

t.test('NIP-40: expired events are refused and stop being served when they expire', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const key = newKey();
  const expired = buildEvent(key.sk, { tags: [['expiration', String(now() - 1)]] });
  t.same(await c.publish(expired), [false, 'invalid: this event has expired (NIP-40)']);
  // Seconds of margin so that a loaded machine still reads it back before it expires; then wait for the expiry.
  const soon = buildEvent(key.sk, { tags: [['expiration', String(now() + 5)]] });
  t.same(await c.publish(soon), [true, '']);
  t.equal((await c.req('now', { ids: [soon.id] })).events.length, 1);
  await waitFor('the expiry', async () => now() > Number(soon.tags[0]?.[1]));
  t.equal((await c.req('later', { ids: [soon.id] })).events.length, 0);
});

t.test('NIP-45: COUNT answers the number of matching events', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const key = newKey();
  for (let i = 0; i < 3; i++) await c.publish(buildEvent(key.sk, { content: `c${i}` }));
  await c.publish(buildEvent(key.sk, { kind: 7, content: '+' }));
  const answer = c.next((m) => m[0] === 'COUNT' && m[1] === 'q');
  c.send(['COUNT', 'q', { authors: [key.pk], kinds: [1] }, { authors: [key.pk], kinds: [7] }]);
  t.same((await answer)[2], { count: 4 });
});

t.test('NIP-11: the information document lists the enforced limits and the plans', async (t) => {
  const res = await fetch(app.url + '/', { headers: { accept: 'application/nostr+json' } });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /application\/nostr\+json/);
  t.equal(res.headers.get('access-control-allow-origin'), '*');
  t.ok(res.headers.get('access-control-allow-headers'));
  t.ok(res.headers.get('access-control-allow-methods'));
  const doc = (await res.json()) as Record<string, unknown> & {
    limitation: Record<string, unknown>;
    fees: { subscription: { amount: number }[] };
  };
  t.same(doc.limitation, {
    max_message_length: 4096,
    max_subscriptions: 3,
    max_limit: 500,
    max_subid_length: 64,
    max_event_tags: 10,
    max_content_length: 100,
    auth_required: false,
    payment_required: false,
    restricted_writes: true,
    created_at_lower_limit: 94608000,
    created_at_upper_limit: 900,
    default_limit: 100,
    max_filters: app.config.maxFilters,
    max_filter_values: app.config.maxFilterValues,
  });
  t.ok((doc.supported_nips as number[]).includes(1));
  t.same(
    doc.fees.subscription.map((f) => f.amount),
    [0, 4.99, 9.99],
  );
  t.match(
    doc.fees.subscription,
    [
      { plan: 'basic', plan_name: 'Basic', daily_post_limit: -1 }, // this file's app lifts basic's limit
      { plan: 'premium', daily_post_limit: 25 },
      { plan: 'advanced', daily_post_limit: -1 },
    ],
    "each fee names its plan and that plan's daily quota",
  );
});

t.test('NIP-42: the relay sends a challenge and accepts a valid AUTH', async (t) => {
  const relay = await Relay.connect(app.relayUrl);
  t.teardown(() => relay.close());
  const key = newKey();
  t.equal(await authenticate(relay, key.sk), '');
});
