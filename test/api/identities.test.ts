// Several Nostr keys on one account, end to end with real clients (nostr-tools nip98 for the API, Relay for NIP-42).
// Alice has the advanced plan and links her project's key: the link needs the new key's proof and her primary key,
// and a key belongs to one account. The project key then signs in (NIP-98, a session, NIP-42) as her account, its
// posts count against her one quota (also when both keys post at once) and show in her history, stats and export.
// A downgrade keeps the link but refuses the project key's posts with restricted: until she upgrades again.
// Unlinking is audited, revokes the key's sessions, and holds at once in another process.
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import { authenticate } from '../helpers/nip42.js';
import { waitFor } from '../helpers/wait-for.js';
import { changePlan } from '../../src/core/accounts/index.js';
import type { App } from '../../src/app.js';
import { ApiClient } from '../helpers/api.js';
import { startTestApp } from '../helpers/app.js';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { testRedisPrefix } from '../helpers/redis.js';

const PATH = '/v1/me/identities';

/** POST /v1/me/identities signed by `by`, with the proof signed by `proofBy` (default: the key being linked). */
async function link(api: ApiClient, by: Key, key: Key, opts: { proofBy?: Key; label?: string; proof?: string } = {}) {
  const body = { pubkey: key.pk, ...(opts.label ? { label: opts.label } : {}) };
  const proof = opts.proof ?? (await api.token(opts.proofBy ?? key, 'POST', PATH, { body }));
  return api.signed(by, 'POST', PATH, { body, headers: { 'x-nostr-identity-proof': proof } });
}

async function accountOf(app: App, key: Key): Promise<string> {
  const row = (await app.db.knex('users').where({ nostr_public_key: key.pk }).first('id')) as { id: string };
  return row.id;
}

async function onAdvanced(app: App, api: ApiClient, key: Key): Promise<string> {
  const me = await api.signed(key, 'GET', '/v1/me');
  if (me.status !== 200) throw new Error(`GET /v1/me answered ${me.status}`);
  const id = await accountOf(app, key);
  await changePlan(app.accountAdmin, id, 'advanced', 'test');
  return id;
}

t.test('linking a key: the plan, the proof, the primary key, one owner per key, at most MAX_IDENTITIES', async (t) => {
  const app = await startTestApp(t, { env: { MAX_IDENTITIES: '3' } });
  const api = new ApiClient(app.url);
  const alice = newKey();
  const project = newKey();
  t.equal((await api.signed(alice, 'GET', '/v1/me')).status, 200);

  const basic = await link(api, alice, project);
  t.equal(basic.status, 403);
  t.match(basic.body.error, {
    code: 'plan_required',
    plan: 'advanced',
    message: /does not include multiple identities.*advanced/,
  });

  const aliceId = await onAdvanced(app, api, alice);
  const missing = await api.signed(alice, 'POST', PATH, { body: { pubkey: project.pk } });
  t.match(
    [missing.status, missing.body.error],
    [400, { code: 'identity_proof_invalid', check: 'missing' }],
    'no proof: 400',
  );
  const byOther = await link(api, alice, project, { proofBy: newKey() });
  t.match(
    [byOther.status, byOther.body.error],
    [400, { code: 'identity_proof_invalid', check: 'pubkey' }],
    'a proof by another key than the one named: 400',
  );
  const elsewhere = await api.token(project, 'POST', '/v1/me/relays', { body: { pubkey: project.pk } });
  const wrongUrl = await link(api, alice, project, { proof: elsewhere });
  t.match(
    [wrongUrl.status, wrongUrl.body.error],
    [400, { code: 'identity_proof_invalid', check: 'url' }],
    'a proof signed for another request: 400',
  );

  const proof = await api.token(project, 'POST', PATH, { body: { pubkey: project.pk, label: 'project' } });
  const linked = await link(api, alice, project, { label: 'project', proof });
  t.equal(linked.status, 201, 'linked');
  t.match(linked.body.identity, { pubkey: project.pk, primary: false, label: 'project', can_post: true });
  const replayed = await link(api, alice, project, { label: 'project', proof });
  t.match(
    [replayed.status, replayed.body.error],
    [400, { code: 'identity_proof_invalid', check: 'replay' }],
    'a proof works once',
  );
  t.equal((await link(api, alice, project)).status, 200, 'linking it again: 200, unchanged');

  const listed = await api.signed(project, 'GET', PATH);
  t.equal(listed.status, 200, 'the linked key signs in');
  t.same(
    listed.body.identities.map((i: { pubkey: string; primary: boolean }) => [i.pubkey, i.primary]),
    [
      [alice.pk, true],
      [project.pk, false],
    ],
  );
  t.match(listed.body, { max_identities: 3, multiple_identities: true });
  const byLinked = await link(api, project, newKey());
  t.match(
    [byLinked.status, byLinked.body.error.code],
    [403, 'primary_key_required'],
    'a linked key cannot link more keys',
  );

  const bob = newKey();
  t.equal((await api.signed(bob, 'GET', '/v1/me')).status, 200);
  const bobsKey = await link(api, alice, bob);
  t.match(
    [bobsKey.status, bobsKey.body.error],
    [409, { code: 'identity_taken', message: /has an account of its own/ }],
    "Bob's key has its own account: 409",
  );
  await onAdvanced(app, api, bob);
  const stolen = await link(api, bob, project);
  t.match(
    [stolen.status, stolen.body.error],
    [409, { code: 'identity_taken', message: /linked to another account/ }],
    "Alice's project key cannot join Bob's account",
  );

  t.equal((await link(api, alice, newKey())).status, 201, 'a third key');
  const fourth = await link(api, alice, newKey());
  t.match(
    [fourth.status, fourth.body.error.code],
    [403, 'identity_limit_reached'],
    'MAX_IDENTITIES=3 counts the primary key',
  );

  const erase = await api.signed(project, 'DELETE', '/v1/me');
  t.match(
    [erase.status, erase.body.error.code],
    [403, 'primary_key_required'],
    'a linked key cannot erase the account',
  );
  const primary = await api.signed(alice, 'DELETE', `${PATH}/${alice.pk}`);
  t.match([primary.status, primary.body.error.code], [409, 'identity_is_primary']);
  const audit = (await app.db
    .knex('audit_log')
    .where({ user_id: aliceId, table_name: 'user_identities' })
    .select('operation', 'actor')) as { operation: string; actor: string }[];
  t.same(
    audit.map((a) => [a.operation, a.actor]),
    [
      ['INSERT', 'user'],
      ['INSERT', 'user'],
    ],
    'each link is audited',
  );
});

t.test(
  "a linked key signs in everywhere as the account, and its posts are the account's: one quota, history, stats, export",
  async (t) => {
    const app = await startTestApp(t, {
      redis: true,
      plans: { advanced: { daily: 6 } },
      env: { AUTH_REQUIRED_FOR_WRITE: 'true', ALLOW_PRIVATE_RELAYS: 'true' },
    });
    const api = new ApiClient(app.url);
    const alice = newKey();
    const project = newKey();
    const aliceId = await onAdvanced(app, api, alice);
    t.equal((await link(api, alice, project)).status, 201);

    const me = await api.signed(project, 'GET', '/v1/me');
    t.match(
      me.body,
      { id: aliceId, pubkey: alice.pk, signed_in_pubkey: project.pk, plan: 'advanced' },
      'NIP-98 by the linked key: the account',
    );
    const token = await api.session(project);
    const viaSession = await api.bearer(token, 'POST', '/v1/events', {
      body: { event: buildEvent(project.sk, { content: 'by session' }) },
    });
    t.equal(viaSession.status, 202, "a session started by the linked key publishes the key's events");
    const sessions = await api.signed(alice, 'GET', '/v1/sessions');
    t.same(
      sessions.body.sessions.map((s: { pubkey: string }) => s.pubkey),
      [project.pk],
      'the session shows the key it acts as',
    );

    // NIP-42: AUTH as the linked key authenticates that key.
    const relay = await Relay.connect(app.relayUrl);
    t.teardown(() => relay.close());
    await authenticate(relay, project.sk);
    await relay.publish(buildEvent(project.sk, { content: 'by relay' }));
    await t.rejects(
      relay.publish(buildEvent(alice.sk)),
      /^restricted: /,
      "AUTH as the project key is not AUTH as Alice's primary key",
    );
    t.equal(
      (
        await api.signed(alice, 'POST', '/v1/events', {
          body: { event: buildEvent(alice.sk, { content: 'by alice' }) },
        })
      ).status,
      202,
    );

    // One quota of 6 a day for the account: 3 used; both keys now post 3 each at once, 3 of the 6 get in.
    const burst = [
      ...Array.from({ length: 3 }, (_, i) => buildEvent(project.sk, { content: `p${i}` })),
      ...Array.from({ length: 3 }, (_, i) => buildEvent(alice.sk, { content: `a${i}` })),
    ];
    const answers = await Promise.all(
      burst.map((ev) =>
        api.signed(ev.pubkey === alice.pk ? alice : project, 'POST', '/v1/events', { body: { event: ev } }),
      ),
    );
    t.equal(answers.filter((r) => r.status === 202).length, 3, 'exactly the rest of the one quota is accepted');
    t.ok(
      answers.filter((r) => r.status !== 202).every((r) => r.status === 429 && r.body.error.quota.limit === 6),
      'the others are refused against the account quota of 6',
    );
    const quota = await api.signed(project, 'GET', '/v1/me/quota');
    t.match(quota.body.daily, { used: 6, limit: 6, remaining: 0 }, 'both keys see the one quota');

    const history = await api.signed(alice, 'GET', '/v1/events?limit=100');
    const authors = new Set(history.body.events.map((e: { event: { pubkey: string } }) => e.event.pubkey));
    t.equal(history.body.events.length, 6, "Alice's history holds the posts of both keys");
    t.same([...authors].sort(), [alice.pk, project.pk].sort());
    const stored = (await app.db.knex('nostr_events').where({ pubkey: project.pk }).distinct('user_id')) as {
      user_id: string;
    }[];
    t.same(stored, [{ user_id: aliceId }], 'stored under the account');

    await app.usage.flush();
    const stats = await api.signed(project, 'GET', '/v1/stats');
    t.equal(stats.status, 200);
    t.equal(stats.body.totals.total_posts, 6, "the account's stats count the posts of both keys");

    // Relay lists (NIP-65, not posts): the primary key's sets the account's relays, a linked key's does not replace them.
    const list = (key: Key, url: string) => buildEvent(key.sk, { kind: 10002, tags: [['r', url]], content: '' });
    t.equal(
      (await api.signed(alice, 'POST', '/v1/events', { body: { event: list(alice, 'ws://127.0.0.1:9/') } })).status,
      202,
    );
    t.equal(
      (await api.signed(project, 'POST', '/v1/events', { body: { event: list(project, 'ws://127.0.0.2:9/') } })).status,
      202,
    );
    const nip65 = (await app.db
      .knex('user_relays')
      .where({ user_id: aliceId, source: 'nip65', is_active: true })
      .select('relay_url')) as { relay_url: string }[];
    t.same(
      nip65.map((r) => r.relay_url),
      ['ws://127.0.0.1:9/'],
      "the account's relays come from its primary key's list only",
    );

    const exported = await api.signed(alice, 'GET', '/v1/me/export');
    t.same(
      exported.body.tables.user_identities.map((r: { pubkey: string }) => r.pubkey),
      [project.pk],
      'the export lists the linked key',
    );
    t.equal(exported.body.tables.nostr_events.length, 8, 'and the events of both keys (6 posts, 2 relay lists)');
    t.equal(
      Number((await app.db.knex('users').count({ n: '*' }))[0]!.n),
      1,
      'the project key never got an account of its own',
    );
  },
);

t.test("a downgrade keeps the link and refuses the linked key's posts with restricted: until an upgrade", async (t) => {
  const app = await startTestApp(t, { plans: { basic: { daily: -1 } } });
  const api = new ApiClient(app.url);
  const alice = newKey();
  const project = newKey();
  const aliceId = await onAdvanced(app, api, alice);
  t.equal((await link(api, alice, project)).status, 201);
  await changePlan(app.accountAdmin, aliceId, 'basic', 'test');

  const relay = await Relay.connect(app.relayUrl);
  t.teardown(() => relay.close());
  await t.rejects(
    relay.publish(buildEvent(project.sk)),
    /^restricted: this key is linked to an account whose plan basic does not include multiple identities: post with the account's primary key, or move to the advanced plan$/,
  );
  const viaApi = await api.signed(project, 'POST', '/v1/events', { body: { event: buildEvent(project.sk) } });
  t.match([viaApi.status, viaApi.body.error.code], [403, 'event_blocked'], 'the API refuses it the same way');
  t.equal(
    await relay.publish(buildEvent(project.sk, { kind: 0, content: '{"name":"project"}' })),
    '',
    'a profile (not a post) still passes',
  );
  t.equal(await relay.publish(buildEvent(alice.sk)), '', 'the primary key posts as before');
  const listed = await api.signed(alice, 'GET', PATH);
  t.match(
    listed.body,
    {
      multiple_identities: false,
      identities: [
        { pubkey: alice.pk, can_post: true },
        { pubkey: project.pk, can_post: false },
      ],
    },
    'the link is kept',
  );

  await changePlan(app.accountAdmin, aliceId, 'advanced', 'test');
  t.equal(await relay.publish(buildEvent(project.sk)), '', 'after the upgrade the linked key posts again');
});

t.test('unlinking: audited, the sessions of the key revoked, and at once in another process', async (t) => {
  const databaseUrl = await createTestDatabaseUrl(t);
  const redis = testRedisPrefix(t);
  const a = await startTestApp(t, { databaseUrl, redis });
  const b = await startTestApp(t, { databaseUrl, redis });
  const apiA = new ApiClient(a.url);
  const apiB = new ApiClient(b.url);
  const alice = newKey();
  const project = newKey();
  const aliceId = await onAdvanced(a, apiA, alice);
  t.equal((await link(apiA, alice, project)).status, 201);
  const token = await apiB.session(project);

  // Process B now knows the project key as Alice's (its account cache holds it).
  const relayB = await Relay.connect(b.relayUrl);
  t.teardown(() => relayB.close());
  await relayB.publish(buildEvent(project.sk, { content: 'before' }));
  t.equal((await b.accounts.find(project.pk))?.id, aliceId);

  const self = await apiA.signed(project, 'DELETE', `${PATH}/${project.pk}`);
  t.equal(self.status, 204, 'the linked key unlinks itself');
  t.equal((await apiB.bearer(token, 'GET', '/v1/me')).status, 401, 'its session is revoked, in the other process too');
  // The cache invalidation crosses processes over Redis: wait for B to drop its entry.
  await waitFor('B to drop its entry', async () => (await b.accounts.find(project.pk)) === undefined);
  t.equal(await b.accounts.find(project.pk), undefined, 'process B no longer takes the key for Alice');
  await relayB.publish(buildEvent(project.sk, { content: 'after' }));
  const after = (await b.db.knex('nostr_events').where({ pubkey: project.pk, content: 'after' }).first('user_id')) as {
    user_id: string;
  };
  t.not(after.user_id, aliceId, "its next event is a stranger's, on an account of its own");
  const audit = (await a.db
    .knex('audit_log')
    .where({ user_id: aliceId, table_name: 'user_identities', operation: 'DELETE' })
    .first('old_values', 'new_values')) as {
    old_values: unknown;
    new_values: unknown;
  };
  t.match(audit, { old_values: { pubkey: project.pk }, new_values: { sessions_revoked: 1 } });
  const gone = await apiA.signed(alice, 'DELETE', `${PATH}/${project.pk}`);
  t.match([gone.status, gone.body.error.code], [404, 'identity_not_found']);
});
