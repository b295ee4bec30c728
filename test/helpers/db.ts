// Each test file gets its own PostgreSQL database (created here, dropped at teardown) on the server the
// machine runs (TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/test), migrated to the latest schema;
// tests of the embedded mode get a PGlite database in a temporary directory.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { Test } from 'tap';
import { openDatabase, type Database } from '../../src/store/db.js';
import { migrateLatest } from '../../src/store/migrate.js';

export const adminUrl = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export function dbUrl(name: string, server = adminUrl): string {
  const u = new URL(server);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Creates an empty database (on the server of `server`, an admin URL) and returns its URL; dropped when the test ends. */
export async function createTestDatabaseUrl(t: Teardown, server = adminUrl): Promise<string> {
  const name = `nostrx_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: server, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  t.teardown(async () => {
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  });
  return dbUrl(name, server);
}

/** A migrated database of its own for one test file. */
export async function createTestDatabase(t: Teardown): Promise<Database & { url: string }> {
  const url = await createTestDatabaseUrl(t);
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolMax: 10 });
  await migrateLatest(db.knex);
  t.teardown(() => db.close());
  return Object.assign(db, { url });
}

/** A migrated embedded database (PGlite) in a temporary directory, removed at teardown. */
export async function createTestPglite(t: Teardown): Promise<Database> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nostrx-pglite-'));
  const db = await openDatabase({ databaseUrl: '', dataDir: dir, poolMax: 1 });
  t.teardown(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await migrateLatest(db.knex);
  return db;
}

/** Runs `exercise` as two subtests of `t`: on a PostgreSQL database of its own and on PGlite, the two the service runs on. */
export function onBothDatabases(t: Test, exercise: (t: Test, db: Knex) => Promise<void>): void {
  t.test('on PostgreSQL', async (st) => exercise(st, (await createTestDatabase(st)).knex));
  t.test('on PGlite', async (st) => exercise(st, (await createTestPglite(st)).knex));
}
