// Which keys may name an account (core/accounts/known-keys.ts), read from the database (store/users.ts
// listAccountKeys, countAccountKeys): every primary and linked key is known after a load, whatever the page size;
// a key learned while a load runs is kept by it; before a load completes, and after one that failed, every key may
// exist (the safe answer: a look-up), and a failed load is tried again later; a filter past its capacity is loaded
// again, larger.
import t, { type Test } from 'tap';
import knexFactory, { type Knex } from 'knex';
import { createTestDatabase, onBothDatabases } from '../../helpers/db.js';
import { startTcpProxy, throughProxy } from '../../helpers/tcp-proxy.js';
import { newKey } from '../../helpers/events.js';
import { waitFor } from '../../helpers/wait-for.js';
import { countAccountKeys, listAccountKeys } from '../../../src/store/users.js';
import { createKnownKeys } from '../../../src/core/accounts/known-keys.js';
import { createLogger } from '../../../src/log.js';

const log = createLogger('silent');

async function exercise(t: Test, db: Knex): Promise<void> {
  const owners = Array.from({ length: 7 }, () => newKey().pk);
  const ids = (await db('users')
    .insert(owners.map((pk) => ({ nostr_public_key: pk })))
    .returning('id')) as { id: string }[];
  const linked = Array.from({ length: 5 }, () => newKey().pk);
  await db('user_identities').insert(linked.map((pk, i) => ({ user_id: ids[i]!.id, pubkey: pk })));
  t.equal(await countAccountKeys(db), 12);
  const all = [...owners, ...linked].sort();

  // pages of 3 over two tables merged in one order: every key exactly once
  const pages: string[][] = [];
  for (let after = ''; ;) {
    const page = await listAccountKeys(db, after, 3);
    pages.push(page);
    if (page.length < 3) break;
    after = page[page.length - 1]!;
  }
  t.same(pages.flat(), all, 'every key, in order, once');

  let lists = 0;
  const keys = createKnownKeys({
    list: (after, limit) => {
      lists++;
      return listAccountKeys(db, after, limit);
    },
    count: () => countAccountKeys(db),
    log,
    page: 3,
    minCapacity: 100,
  });
  const stranger = newKey().pk;
  t.ok(keys.mayExist(stranger), 'before a load, any key may exist');
  await keys.load();
  t.equal(lists, 5, 'read in pages');
  t.ok(
    all.every((k) => keys.mayExist(k)),
    'every primary and linked key may exist',
  );
  const strangers = Array.from({ length: 200 }, () => newKey().pk);
  t.ok(
    strangers.filter((k) => keys.mayExist(k)).length <= 10,
    'keys no account has are told apart (1 % false positives at capacity)',
  );
  keys.add(stranger);
  t.ok(keys.mayExist(stranger), 'a key learned after the load');

  // a key learned while a load is reading pages that sort after it is kept by that load
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const slow = createKnownKeys({
    list: async (after, limit) => {
      await gate;
      return listAccountKeys(db, after, limit);
    },
    count: () => countAccountKeys(db),
    log,
    page: 3,
  });
  const loading = slow.load();
  const learned = '0'.repeat(64); // sorts before every page
  slow.add(learned);
  release();
  await loading;
  t.ok(slow.mayExist(learned), 'learned during the load, kept');
  t.ok(all.every((k) => slow.mayExist(k)));

  // past its capacity: loaded again, and still knows everything it was told
  const counted: number[] = [];
  let loads = 0; // counted when a load starts: it asks for the count at once
  const small = createKnownKeys({
    list: (after, limit) => listAccountKeys(db, after, limit),
    count: async () => {
      loads++;
      const n = await countAccountKeys(db);
      counted.push(n);
      return n;
    },
    log,
    minCapacity: 20, // 12 keys: twice is 24
  });
  await small.load();
  for (let i = 0; i < 100; i++) small.add(owners[i % owners.length]!); // told again and again (every look-up)
  t.equal(loads, 1, 'keys it has are not counted again: no second load');
  const extra = Array.from({ length: 20 }, () => newKey().pk);
  await db('users').insert(extra.map((pk) => ({ nostr_public_key: pk })));
  for (const k of extra) small.add(k);
  await waitFor('a second load', async () => counted.length >= 2);
  await small.load(); // the one in flight (or one more)
  t.same(counted.slice(0, 2), [12, 32], 'sized for the keys counted the second time');
  t.ok([...all, ...extra].every((k) => small.mayExist(k)));
}

t.test('account keys from both tables, in a filter', async (t) => onBothDatabases(t, exercise));

t.test('a load that fails leaves every key possible, and is tried again a while later', async (t) => {
  const { url } = await createTestDatabase(t);
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: Number(new URL(url).port || 5432) });
  const viaProxy = knexFactory({ client: 'pg', connection: throughProxy(url, proxy), pool: { min: 0, max: 2 } });
  t.teardown(() => viaProxy.destroy());
  const direct = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  t.teardown(() => direct.destroy());
  const owner = newKey().pk;
  await direct('users').insert({ nostr_public_key: owner });
  await proxy.cut(); // the database is away
  let loads = 0;
  const keys = createKnownKeys({
    list: (after, limit) => listAccountKeys(viaProxy, after, limit),
    count: () => {
      loads++;
      return countAccountKeys(viaProxy);
    },
    log,
    retryMs: 200,
  });
  await keys.load();
  const stranger = newKey().pk;
  t.ok(keys.mayExist(stranger), 'nothing loaded: every author is looked up');
  t.equal(loads, 1);
  for (let i = 0; i < 50; i++) keys.add(newKey().pk); // keys learned meanwhile do not ask the database again
  t.equal(loads, 1, 'no load before the retry is due');
  await proxy.restore();
  await waitFor('the retry to load the keys', async () => !keys.mayExist(stranger));
  t.ok(keys.mayExist(owner), 'loaded');
  await keys.stop();
  const after = loads;
  await keys.load();
  t.equal(loads, after, 'stopped: no more loads');
});
