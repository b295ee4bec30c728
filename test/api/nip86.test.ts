// NIP-86 relay management at the relay's own URL: JSON-RPC with Content-Type application/nostr+json+rpc and NIP-98
// (payload required) by an admin. Bans are honoured by admission at once, in this process and, through Redis, in
// every other one; every change is audited.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient, type CallOptions, type Reply } from '../helpers/api.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait-for.js';

const admin = newKey();
const app = await startTestApp(t, { redis: true, env: { ADMIN_PUBKEYS: admin.pk } });
const api = new ApiClient(app.url);
const RPC = 'application/nostr+json+rpc';

const rpc = (method: string, params: unknown[] = [], opts: CallOptions = {}, key: Key = admin): Promise<Reply> =>
  api.signed(key, 'POST', '/', { body: { method, params }, contentType: RPC, ...opts });

t.test('supportedmethods lists the methods', async (t) => {
  const r = await rpc('supportedmethods');
  t.equal(r.status, 200);
  t.equal(r.headers.get('content-type')?.split(';')[0], 'application/json');
  for (const m of ['supportedmethods', 'banpubkey', 'listbannedpubkeys', 'allowpubkey', 'banevent', 'listbannedevents'])
    t.ok(r.body.result.includes(m), m);
});

t.test('banpubkey: the relay and the API refuse the pubkey at once; unbanpubkey lifts it', async (t) => {
  const spammer = newKey();
  const relay = await RawClient.connect(app.relayUrl);
  t.teardown(() => relay.close());
  t.same(await relay.publish(buildEvent(spammer.sk, { content: 'before' })), [true, '']);

  let r = await rpc('banpubkey', [spammer.pk, 'spam']);
  t.same([r.status, r.body], [200, { result: true }]);
  t.same(await relay.publish(buildEvent(spammer.sk, { content: 'after' })), [
    false,
    'blocked: this pubkey is banned from this relay',
  ]);
  const viaApi = await api.signed(spammer, 'POST', '/v1/events', {
    body: { event: buildEvent(spammer.sk, { content: 'api' }) },
  });
  t.same(
    [viaApi.status, viaApi.body.error.code, viaApi.body.error.message],
    [403, 'event_blocked', 'blocked: this pubkey is banned from this relay'],
  );

  r = await rpc('listbannedpubkeys');
  t.same(
    r.body.result.filter((b: { pubkey: string }) => b.pubkey === spammer.pk),
    [{ pubkey: spammer.pk, reason: 'spam' }],
  );
  const audit = await app.db
    .knex('audit_log')
    .where({ table_name: 'relay_bans', operation: 'INSERT' })
    .whereRaw(`new_values->>'value' = ?`, [spammer.pk]);
  t.equal(audit.length, 1);
  t.equal(audit[0].actor, admin.pk);

  r = await rpc('unbanpubkey', [spammer.pk]);
  t.equal(r.body.result, true);
  t.same(await relay.publish(buildEvent(spammer.sk, { content: 'forgiven' })), [true, '']);
});

t.test('allowpubkey lifts a ban and is listed', async (t) => {
  const k = newKey();
  await rpc('banpubkey', [k.pk]);
  const r = await rpc('allowpubkey', [k.pk, 'verified human']);
  t.equal(r.body.result, true);
  const allowed = await rpc('listallowedpubkeys');
  t.same(
    allowed.body.result.filter((b: { pubkey: string }) => b.pubkey === k.pk),
    [{ pubkey: k.pk, reason: 'verified human' }],
  );
  const banned = await rpc('listbannedpubkeys');
  t.notOk(banned.body.result.some((b: { pubkey: string }) => b.pubkey === k.pk));
  const relay = await RawClient.connect(app.relayUrl);
  t.teardown(() => relay.close());
  t.same(await relay.publish(buildEvent(k.sk)), [true, '']);
  t.equal((await rpc('unallowpubkey', [k.pk])).body.result, true);
  t.notOk((await rpc('listallowedpubkeys')).body.result.some((b: { pubkey: string }) => b.pubkey === k.pk));
});

t.test('banevent: the stored event stops being served and cannot come back; allowevent restores it', async (t) => {
  const alice = newKey();
  const ev = buildEvent(alice.sk, { content: 'illegal content' });
  const relay = await RawClient.connect(app.relayUrl);
  t.teardown(() => relay.close());
  t.same(await relay.publish(ev), [true, '']);
  t.equal((await relay.req('before', { ids: [ev.id] })).events.length, 1);

  t.equal((await rpc('banevent', [ev.id, 'court order'])).body.result, true);
  t.equal((await relay.req('after', { ids: [ev.id] })).events.length, 0, 'no longer served');
  t.same(await relay.publish(ev), [false, 'blocked: this event is banned from this relay']);
  const listed = await rpc('listbannedevents');
  t.same(
    listed.body.result.filter((b: { id: string }) => b.id === ev.id),
    [{ id: ev.id, reason: 'court order' }],
  );
  const row = await app.db.knex('nostr_events').where({ event_id: ev.id }).first('removed_reason');
  t.equal(row.removed_reason, 'banned');

  t.equal((await rpc('allowevent', [ev.id])).body.result, true);
  t.equal((await relay.req('restored', { ids: [ev.id] })).events.length, 1, 'served again');
  t.notOk((await rpc('listbannedevents')).body.result.some((b: { id: string }) => b.id === ev.id));
});

t.test('a ban made on one instance holds on another that shares the database and Redis', async (t) => {
  const otherStarted = Date.now();
  const other = await startTestApp(t, {
    databaseUrl: app.config.databaseUrl,
    redis: app.config.redisPrefix,
    env: { ADMIN_PUBKEYS: admin.pk },
  });
  const k = newKey();
  // Closed (handshake finished) before the test ends: an instance that shuts down while a client's close handshake
  // is in flight waits 30 s for it.
  const relay = await RawClient.connect(other.relayUrl);
  t.same(await relay.publish(buildEvent(k.sk, { content: 'first' })), [true, '']);
  t.equal((await rpc('banpubkey', [k.pk])).body.result, true);
  // The same event each time: a refusal of a ban is not charged, and an acceptance would make it a duplicate.
  const ev = buildEvent(k.sk, { content: 'second' });
  let answer: [boolean, string] = [true, ''];
  await waitFor('the other instance to refuse the banned pubkey', async () => {
    answer = await relay.publish(ev);
    return !answer[0];
  });
  t.same(answer, [false, 'blocked: this pubkey is banned from this relay']);
  // The other instance's safety-net reload first runs a minute after it started: before that, only Redis told it.
  t.ok(Date.now() - otherStarted < 60_000, 'heard over Redis, before the once-a-minute reload could have run');
  const closed = new Promise((resolve) => relay.ws.once('close', resolve));
  relay.close();
  await closed;
});

t.test('requests that are not JSON-RPC for NIP-86 are refused in NIP-86 shape', async (t) => {
  let r = await rpc('supportedmethods', [], { contentType: 'application/json' });
  t.equal(r.status, 415);
  t.equal(r.body.result, null);
  t.match(r.body.error, /^unsupported_media_type: send NIP-86 requests as application\/nostr\+json\+rpc/);
  r = await rpc('changerelayname', ['x']);
  t.same([r.status, r.body], [400, { result: null, error: 'unsupported: method "changerelayname" is not supported' }]);
  r = await rpc('banpubkey', ['not-a-pubkey']);
  t.same([r.status, r.body.error], [400, 'invalid: params[0] must be a 64-character lowercase hex pubkey']);
  r = await api.signed(admin, 'POST', '/', { raw: '{"method":', contentType: RPC, payloadOf: null });
  t.equal(r.status, 400);
  t.match(r.body.error, /^malformed_json/);
});

t.test('NIP-98 is required: no header, no payload tag, the wrong URL, not an admin', async (t) => {
  let r = await api.request('POST', '/', { body: { method: 'supportedmethods', params: [] }, contentType: RPC });
  t.equal(r.status, 401);
  t.equal(r.headers.get('www-authenticate'), 'Nostr');
  t.match(r.body.error, /^unauthorized: Authorization header is missing/);
  r = await rpc('supportedmethods', [], { payloadOf: null });
  t.equal(r.status, 401);
  t.match(r.body.error, /no payload tag/);
  r = await rpc('supportedmethods', [], { signUrl: app.relayUrl });
  t.equal(r.status, 401, 'u is the relay URL in http(s) form');
  t.match(r.body.error, /u tag does not match/);
  r = await rpc('banpubkey', [admin.pk], {}, newKey());
  t.same([r.status, r.body.result], [403, null]);
  t.match(r.body.error, /^not_admin:/);
});

t.test('GET / still serves NIP-11 and the plain page', async (t) => {
  const r = await api.request('GET', '/', { headers: { accept: 'application/nostr+json' } });
  t.equal(r.status, 200);
  t.ok(Array.isArray(r.body.supported_nips));
});
