// Without REDIS_URL the Postgres ledger alone enforces quotas: each process keeps its counters in memory and
// knows only its own posts, so two processes on one database let more posts reach the ledger, which refuses the
// excess. 100 notes at once over two real processes: exactly 3 accepted.
import t from 'tap';
import { createTestDatabaseUrl } from '../../helpers/db.js';
import { startTestApp } from '../../helpers/app.js';
import { startServiceProcess } from '../../helpers/forwarding.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';

const databaseUrl = await createTestDatabaseUrl(t);
const a = await startTestApp(t, { databaseUrl });
const b = await startServiceProcess(t, { DATABASE_URL: databaseUrl, REDIS_URL: '', UPSTREAM_RELAYS: '' });

t.test('one process without Redis: 3 notes, then refused', async (t) => {
  const c = await RawClient.connect(a.relayUrl);
  t.teardown(() => c.close());
  const key = newKey();
  for (let i = 0; i < 3; i++) t.same(await c.publish(buildEvent(key.sk, { content: `n${i}` })), [true, '']);
  const [ok, message] = await c.publish(buildEvent(key.sk, { content: 'n3' }));
  t.equal(ok, false);
  t.match(
    message,
    /^rate-limited: daily limit of 3 posts reached on the basic plan; resets at \d{4}-\d\d-\d\dT00:00:00Z$/,
  );
});

t.test('two processes without Redis, 100 notes at once: exactly 3 accepted', async (t) => {
  const key = newKey();
  const clients = await Promise.all(
    Array.from({ length: 100 }, (_, i) => RawClient.connect(i % 2 === 0 ? a.relayUrl : b.relayUrl)),
  );
  t.teardown(() => clients.forEach((c) => c.close()));
  const answers = await Promise.all(clients.map((c, i) => c.publish(buildEvent(key.sk, { content: `burst ${i}` }))));
  t.equal(answers.filter(([ok]) => ok).length, 3);
  t.ok(
    answers
      .filter(([ok]) => !ok)
      .every(([, m]) => m.startsWith('rate-limited: daily limit of 3 posts reached on the basic plan')),
  );
  const user = await a.accounts.forPubkey(key.pk);
  const row = await a.db.knex('user_quotas').where({ user_id: user.id }).first('posts_used');
  t.same(row, { posts_used: 3 });
  const n = await a.db.knex('nostr_events').where({ pubkey: key.pk }).count({ n: '*' });
  t.equal(Number((n[0] as { n: string }).n), 3);
});
