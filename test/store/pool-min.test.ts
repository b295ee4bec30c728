// DB_POOL_MIN: once made, that many connections stay open while the pool is idle. The pool closes a connection
// idle for 30 s; without a minimum a relay quiet for half a minute (most of the time, for a relay of people who
// post a few times a day) answers its next post over a new connection, to a backend with cold caches, with every
// hot statement prepared again. Watched on the server (pg_stat_activity), over the pool's real idle timeout.
import t from 'tap';
import knexFactory from 'knex';
import { openDatabase } from '../../src/store/db.js';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { waitFor } from '../helpers/wait-for.js';

const databaseUrl = await createTestDatabaseUrl(t);
const observer = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 1 } });
t.teardown(() => observer.destroy());

/** Connections open to the test database, this observer's own left out. */
async function serverConnections(): Promise<number> {
  const { rows } = (await observer.raw(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  )) as { rows: { n: number }[] };
  return rows[0]?.n ?? 0;
}

t.test('an idle pool closes its connections down to DB_POOL_MIN, not to none', async (t) => {
  const db = await openDatabase({
    databaseUrl,
    dataDir: '',
    poolMax: 5,
    poolMin: 2,
    limits: { connectMs: 2000, acquireMs: 3000, queryMs: 5000 },
  });
  t.teardown(() => db.close());
  // five statements at once: the pool opens five connections
  await Promise.all(Array.from({ length: 5 }, () => db.knex.raw('SELECT pg_sleep(0.2)')));
  t.equal(db.poolStats().free, 5, 'five connections, all idle now');
  t.equal(await serverConnections(), 5);

  // All five have been idle equally long, so the cycle that closes one closes every one it may: without a minimum
  // the count goes from five to none at once.
  const left = await waitFor(
    'the pool to close its idle connections',
    async () => {
      const free = db.poolStats().free;
      return free < 5 ? free : undefined;
    },
    90_000,
    250,
  );
  t.equal(left, 2, 'two stay open');
  t.equal(
    await waitFor('the server to see the others go', async () => ((await serverConnections()) === 2 ? 2 : undefined)),
    2,
  );
  await db.knex.raw('SELECT 1');
  t.equal(await serverConnections(), 2, 'and the next statement uses one of them');
});
