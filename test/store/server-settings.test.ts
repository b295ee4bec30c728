// Settings of the server that the service relies on and cannot set for its connections: whether tables are
// analyzed as they grow (autovacuum with track_counts). This project's test machines run PostgreSQL with autovacuum
// off, so there the warning is what is checked; on a server with it on, its absence.
import t from 'tap';
import { pino } from 'pino';
import { openDatabase } from '../../src/store/db.js';
import { analyzesAsTablesGrow } from '../../src/store/server-settings.js';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { startTestApp } from '../helpers/app.js';

const databaseUrl = await createTestDatabaseUrl(t);
const one = await openDatabase({ databaseUrl, dataDir: '', poolMax: 1 });
t.teardown(() => one.close());
const { rows } = (await one.knex.raw(
  `SELECT bool_and(setting = 'on') AS on FROM pg_settings WHERE name IN ('autovacuum', 'track_counts')`,
)) as { rows: { on: boolean }[] };
const serverAnalyzes = rows[0]?.on === true;

t.test("read from the server's settings", async (t) => {
  t.equal(await analyzesAsTablesGrow(one.knex), serverAnalyzes, `as the server is set (${String(serverAnalyzes)})`);
  // a superuser may turn the statistics off for a session: autovacuum then has nothing to go by
  await one.knex.raw('SET track_counts = off');
  t.equal(await analyzesAsTablesGrow(one.knex), false, 'not without track_counts');
  await one.knex.raw('RESET track_counts');
});

t.test('the service says at start when the server does not analyze tables', async (t) => {
  const lines: { level: number; msg: string; autovacuum?: string }[] = [];
  const log = pino(
    { level: 'warn' },
    { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  await startTestApp(t, { databaseUrl, log });
  const warnings = lines.filter((l) => l.autovacuum === 'off');
  t.equal(warnings.length, serverAnalyzes ? 0 : 1, serverAnalyzes ? 'no warning' : 'one warning line');
  if (!serverAnalyzes) t.match(warnings[0]?.msg, /autovacuum/);
});
