// `npm run migrate`: applies pending migrations and creates the monthly partitions for this month and the two after,
// then prints one JSON line ({ database, migrations, partitions }) and exits. The service does the same at start;
// this entry lets an operator migrate before rolling out new processes.
import { loadConfig } from './config.js';
import { openDatabase } from './store/db.js';
import { migrateLatest } from './store/migrate.js';
import { ensureMonthlyPartitions } from './store/partitions.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2 });
  try {
    const migrations = await migrateLatest(db.knex);
    const partitions = await ensureMonthlyPartitions(db.knex, new Date());
    process.stdout.write(JSON.stringify({ database: db.kind, migrations, partitions }) + '\n');
  } finally {
    await db.close();
  }
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(JSON.stringify({ error: message }) + '\n');
  process.exitCode = 1;
});
