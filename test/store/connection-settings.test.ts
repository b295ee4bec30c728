// What every connection of the service's pools is set to at its start. JIT compilation is off: a generic plan's
// estimates (an author's reads of any kind, store/events.ts) pass jit_above_cost for statements that run in a
// millisecond, and compiling one took ~17 ms at every execution.
import t from 'tap';
import { openDatabase } from '../../src/store/db.js';
import { createTestDatabaseUrl } from '../helpers/db.js';

const databaseUrl = await createTestDatabaseUrl(t);

for (const limits of [undefined, { connectMs: 2000, acquireMs: 3000, queryMs: 5000 }]) {
  t.test(`no JIT compilation, ${limits ? 'with' : 'without'} the wait limits`, async (t) => {
    const db = await openDatabase({ databaseUrl, dataDir: '', poolMax: 2, ...(limits ? { limits } : {}) });
    t.teardown(() => db.close());
    const { rows } = (await db.knex.raw('SHOW jit')) as { rows: { jit: string }[] };
    t.equal(rows[0]?.jit, 'off');
  });
}

// A DATABASE_URL may carry session options of its own (`options=`; a managed server may need one): pg would take
// them instead of ours, so both are sent, ours first.
const withOptions = (options: string, more: Record<string, string> = {}): string => {
  const url = new URL(databaseUrl);
  for (const [k, v] of Object.entries(more)) url.searchParams.set(k, v);
  url.searchParams.set('options', options);
  return url.toString();
};

const settingsOf = async (url: string, names: readonly string[]): Promise<Record<string, string>> => {
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolMax: 1 });
  try {
    const { rows } = (await db.knex.raw('SELECT name, setting FROM pg_settings WHERE name = ANY(?)', [[...names]])) as {
      rows: { name: string; setting: string }[];
    };
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  } finally {
    await db.close();
  }
};

t.test("the URL's own session options are applied beside ours", async (t) => {
  const s = await settingsOf(withOptions('-c lock_timeout=4321 -c application_name=nostrx_operator'), [
    'jit',
    'lock_timeout',
    'application_name',
  ]);
  t.same(s, { jit: 'off', lock_timeout: '4321', application_name: 'nostrx_operator' });
});

t.test("the URL's other parameters are kept beside its options", async (t) => {
  const s = await settingsOf(withOptions('-c lock_timeout=1234', { application_name: 'nostrx op+s' }), [
    'jit',
    'lock_timeout',
    'application_name',
  ]);
  t.same(s, { jit: 'off', lock_timeout: '1234', application_name: 'nostrx op+s' });
});

t.test("an operator's own setting of JIT wins over ours", async (t) => {
  const s = await settingsOf(withOptions('-c jit=on'), ['jit']);
  t.same(s, { jit: 'on' });
});

t.test('a URL without options is used as it is', async (t) => {
  const s = await settingsOf(databaseUrl, ['jit']);
  t.same(s, { jit: 'off' });
});
