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
