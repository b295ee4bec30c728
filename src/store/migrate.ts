// Runs the knex migrations in migrations/ (as .ts under tsx/tap, as .js when built). Names are stored without
// their extension, so a database migrated from sources can later be run from the build and the reverse.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/store → ../../migrations (sources); dist/src/store → ../../migrations (build output)
export const migrationsDir = path.resolve(here, '..', '..', 'migrations');

const migrationFile = /\.(ts|js|mjs)$/;

class DirMigrationSource implements Knex.MigrationSource<string> {
  constructor(private readonly dir: string) {}
  async getMigrations(): Promise<string[]> {
    const files = await readdir(this.dir);
    return files.filter((f) => migrationFile.test(f) && !f.endsWith('.d.ts')).sort();
  }
  getMigrationName(file: string): string {
    return file.replace(migrationFile, '');
  }
  async getMigration(file: string): Promise<Knex.Migration> {
    return (await import(pathToFileURL(path.join(this.dir, file)).href)) as Knex.Migration;
  }
}

/** The migrations on disk, as knex reads them (a test can stop before one of them with `knex.migrate.up`). */
export function migrationSource(): Knex.MigrationSource<string> {
  return new DirMigrationSource(migrationsDir);
}

export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest({ migrationSource: migrationSource() })) as [number, string[]];
  return applied;
}

/** True when every migration on disk has been applied (used by /readyz). */
export async function migrationsCurrent(knex: Knex): Promise<boolean> {
  const [, pending] = (await knex.migrate.list({ migrationSource: migrationSource() })) as [unknown[], unknown[]];
  return pending.length === 0;
}
