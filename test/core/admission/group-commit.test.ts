// Group commit: a burst of concurrent admissions shares transactions, and every event still gets exactly the
// answer it would get alone: stored once, duplicates recognised within and across batches, quotas exact, a
// deleted event not brought back.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';

const app = await startTestApp(t, { plans: { advanced: { daily: -1 } } });
const relayCtx = { via: 'relay' as const, authed: new Set<string>() };

async function countStored(ids: string[]): Promise<number> {
  const rows = (await app.db.knex('nostr_events').whereIn('event_id', ids).count({ n: '*' })) as { n: string }[];
  return Number(rows[0]?.n);
}

t.test('hundreds of concurrent events from many authors are all stored, once', async (t) => {
  const keys = Array.from({ length: 50 }, newKey);
  // unlimited authors: put them on advanced through the core function the admin API uses
  for (const k of keys) {
    const user = await app.accounts.forPubkey(k.pk);
    await (
      await import('../../../src/core/accounts/account-admin.js')
    ).changePlan(app.accountAdmin, user.id, 'advanced', 'test');
  }
  const events = Array.from({ length: 400 }, (_, i) =>
    buildEvent(keys[i % keys.length]!.sk, { content: `burst ${i}` }),
  );
  const answers = await Promise.all([...events, ...events.slice(0, 50)].map((ev) => app.admit(ev, relayCtx)));
  const accepted = answers.filter((a) => a.status === 'accepted').length;
  const duplicates = answers.filter((a) => a.status === 'duplicate').length;
  t.equal(accepted, 400);
  t.equal(duplicates, 50, 'copies sent in the same burst are duplicates, not errors');
  t.equal(await countStored(events.map((e) => e.id)), 400);
  const ledger = (await app.db.knex('user_quotas').where({ quota_type: 'daily' }).sum({ n: 'posts_used' })) as {
    n: string;
  }[];
  t.equal(Number(ledger[0]?.n), 400, 'the ledger counted every stored post once');
});

t.test('uncapped posts in one statement: each post gets its own count in the usage records', async (t) => {
  const k = newKey();
  const user = await app.accounts.forPubkey(k.pk);
  await (
    await import('../../../src/core/accounts/account-admin.js')
  ).changePlan(app.accountAdmin, user.id, 'advanced', 'test');
  const events = Array.from({ length: 30 }, (_, i) => buildEvent(k.sk, { content: `counted ${i}` }));
  const answers = await Promise.all(events.map((ev) => app.admit(ev, relayCtx)));
  t.equal(answers.filter((a) => a.status === 'accepted').length, 30);
  await app.usage.flush();
  const rows = (await app.db
    .knex('usage_events')
    .where({ user_id: user.id, event_action: 'post_charged' })
    .select('posts_used_before', 'posts_used_after')) as {
    posts_used_before: number;
    posts_used_after: number;
  }[];
  t.same(
    rows.map((r) => r.posts_used_after).sort((a, b) => a - b),
    Array.from({ length: 30 }, (_, i) => i + 1),
    'counts 1..30, each once, though many posts shared a statement',
  );
  t.ok(rows.every((r) => r.posts_used_before === r.posts_used_after - 1));
});

t.test('capped and uncapped authors in the same burst: the capped one still gets exactly 3', async (t) => {
  const capped = newKey();
  const free = newKey();
  const user = await app.accounts.forPubkey(free.pk);
  await (
    await import('../../../src/core/accounts/account-admin.js')
  ).changePlan(app.accountAdmin, user.id, 'advanced', 'test');
  const events = Array.from({ length: 40 }, (_, i) =>
    buildEvent((i % 2 ? capped : free).sk, { content: `mixed ${i}` }),
  );
  const answers = await Promise.all(events.map((ev) => app.admit(ev, relayCtx)));
  const acceptedOf = (pk: string) =>
    answers.filter((a, i) => a.status === 'accepted' && events[i]!.pubkey === pk).length;
  t.equal(acceptedOf(free.pk), 20);
  t.equal(acceptedOf(capped.pk), 3);
  t.equal(await countStored(events.map((e) => e.id)), 23);
});

t.test('the ledger refuses what the counters let through: that batch is written again, post by post', async (t) => {
  const capped = newKey();
  t.equal((await app.admit(buildEvent(capped.sk, { content: 'counted here' }), relayCtx)).status, 'accepted');
  const cappedUser = await app.accounts.forPubkey(capped.pk);
  const free = newKey();
  const freeUser = await app.accounts.forPubkey(free.pk);
  await (
    await import('../../../src/core/accounts/account-admin.js')
  ).changePlan(app.accountAdmin, freeUser.id, 'advanced', 'test');
  // another process stored a post of this author that these counters never saw: 2 of 3 used, where they count 1
  await app.db.knex('user_quotas').where({ user_id: cappedUser.id, quota_type: 'daily' }).update({ posts_used: 2 });
  const events = [
    ...[1, 2].map((i) => buildEvent(capped.sk, { content: `one too many ${i}` })),
    ...Array.from({ length: 10 }, (_, i) => buildEvent(free.sk, { content: `beside it ${i}` })),
  ];
  const answers = await Promise.all(events.map((ev) => app.admit(ev, relayCtx)));
  const of = (pk: string) => answers.filter((_, i) => events[i]!.pubkey === pk).map((a) => a.status);
  t.same(of(capped.pk).sort(), ['accepted', 'rejected'], 'one fits in the ledger, the other is refused');
  const refused = answers.find((a) => a.status === 'rejected');
  t.match(
    refused?.status === 'rejected' && refused.rejection.message,
    /^rate-limited: daily limit of 3 posts reached on the basic plan/,
  );
  t.same(
    of(free.pk),
    Array.from({ length: 10 }, () => 'accepted'),
    'the other posts of the batch are stored',
  );
  t.equal(await countStored(events.map((e) => e.id)), 11);
  const used = (await app.db
    .knex('user_quotas')
    .where({ user_id: cappedUser.id, quota_type: 'daily' })
    .pluck('posts_used')) as number[];
  t.same(used, [3], 'the ledger at the cap, not past it');
});

t.test('a basic author sending 20 posts at once gets exactly 3 stored', async (t) => {
  const k = newKey();
  const events = Array.from({ length: 20 }, (_, i) => buildEvent(k.sk, { content: `basic ${i}` }));
  const answers = await Promise.all(events.map((ev) => app.admit(ev, relayCtx)));
  t.equal(answers.filter((a) => a.status === 'accepted').length, 3);
  for (const a of answers.filter((x) => x.status === 'rejected')) {
    t.match(
      a.status === 'rejected' && a.rejection.message,
      /^rate-limited: daily limit of 3 posts reached on the basic plan/,
    );
  }
  t.equal(await countStored(events.map((e) => e.id)), 3, 'refused posts are not stored');
});

t.test('tags of batched events are indexed, and a deleted event is not stored again', async (t) => {
  const k = newKey();
  const user = await app.accounts.forPubkey(k.pk);
  await (
    await import('../../../src/core/accounts/account-admin.js')
  ).changePlan(app.accountAdmin, user.id, 'advanced', 'test');
  const tagged = Array.from({ length: 30 }, (_, i) =>
    buildEvent(k.sk, {
      content: `t${i}`,
      tags: [
        ['t', 'batched'],
        ['p', k.pk],
      ],
    }),
  );
  await Promise.all(tagged.map((ev) => app.admit(ev, relayCtx)));
  const found = await app.queries.query([{ tags: { t: ['batched'] }, limit: 100 }]);
  t.equal(found.length, 30);

  const doomed = buildEvent(k.sk, { content: 'to be deleted first' });
  const deletion = buildEvent(k.sk, { kind: 5, tags: [['e', doomed.id]] });
  t.equal((await app.admit(deletion, relayCtx)).status, 'accepted');
  const answer = await app.admit(doomed, relayCtx);
  t.equal(answer.status, 'rejected');
  t.equal(
    answer.status === 'rejected' && answer.rejection.message,
    'blocked: this event was deleted by its author (NIP-09)',
  );
});

t.test('a burst of first posts: every post stored, one account each', async (t) => {
  const events = Array.from({ length: 600 }, (_, i) => buildEvent(newKey().sk, { content: `first ${i}` }));
  const answers = await Promise.all(events.map((ev) => app.admit(ev, relayCtx)));
  t.equal(answers.filter((a) => a.status === 'accepted').length, 600);
  t.equal(await countStored(events.map((e) => e.id)), 600);
  const accounts = (await app.db
    .knex('users')
    .whereIn(
      'nostr_public_key',
      events.map((e) => e.pubkey),
    )
    .count({ n: '*' })) as { n: string }[];
  t.equal(Number(accounts[0]?.n), 600, 'one account each');
});
