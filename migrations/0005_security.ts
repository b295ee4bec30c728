// Security: audit_log, the database roles with their grants, and row-level security on user_quotas.
// Source: spec "Security Considerations" and "Access Control".
//
// How this stays harmless to the application and to a cluster with many databases:
// - Roles belong to the cluster, not to a database. They are created only when absent. Two databases migrating at
//   once (the tests do) can both see a role missing; the loser's CREATE ROLE fails with duplicate_object or
//   unique_violation, which is caught and ignored. Grants and policies are per database and are always created.
//   If the migrating user may not create roles, the migration stops with a message naming the role to create.
// - RLS is ENABLEd, not FORCEd. The application connects as the owner of the tables (the user that ran these
//   migrations), and owners, superusers and BYPASSRLS roles are not subject to RLS: the application sees every row.
//   The policies restrict only the nostrx_app_* roles, meant for other consumers (analytics, support tools).
// - PGlite 0.5.16 supports roles, DO blocks, grants and RLS (checked), so these statements run there unchanged.
import type { Knex } from 'knex';

const roles = ['nostrx_app_read', 'nostrx_app_write', 'nostrx_admin'] as const;

/** Runs `sql` with every `%I` replaced by the current schema (the one these migrations create tables in). */
function inCurrentSchema(sql: string): string {
  return `DO $$ BEGIN EXECUTE format('${sql}', current_schema()); END $$`;
}

// REPAIR: the spec's policy is `TO app_user`, a role it never creates, and it leaves the roles it does create
// (nostrx_app_read, nostrx_app_write) with RLS on and no policy, so they would see no quota rows at all. The
// user-scoped policy applies to the read and write roles; nostrx_admin gets every row.
// REPAIR: `current_setting('app.current_user_id')` raises an error when the setting is absent; with missing_ok
// and NULLIF, an absent or empty setting matches no row (fails closed) instead.
const ownRows = `user_id = NULLIF(current_setting('app.current_user_id', true), '')::uuid`;

const statements: readonly string[] = [
  `CREATE TABLE audit_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    table_name VARCHAR(50) NOT NULL,
    operation VARCHAR(10) NOT NULL,
    old_values JSONB,
    new_values JSONB,
    user_id UUID,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
  )`,
  // user_id has no foreign key on purpose: the trail must outlive the user it names.
  `CREATE INDEX idx_audit_log_table_created ON audit_log (table_name, created_at)`,
  `CREATE INDEX idx_audit_log_user ON audit_log (user_id) WHERE user_id IS NOT NULL`,

  // The spec's CREATE ROLE x3, made idempotent and race-safe (one statement).
  `DO $$
  DECLARE
    r text;
  BEGIN
    FOREACH r IN ARRAY ARRAY[${roles.map((r) => `'${r}'`).join(', ')}] LOOP
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
        BEGIN
          EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
          WHEN duplicate_object OR unique_violation THEN
            NULL; -- created by a concurrent migration of another database in this cluster
          WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role % does not exist and % may not create it', r, current_user
              USING HINT = 'create the roles nostrx_app_read, nostrx_app_write and nostrx_admin (NOLOGIN), or run the migrations as a user with CREATEROLE';
        END;
      END IF;
    END LOOP;
  END
  $$`,

  // The spec's grants. REPAIR: `ON ALL TABLES` only reaches tables that exist now; ALTER DEFAULT PRIVILEGES gives
  // the same rights on tables created later by the migrating user (later migrations, new monthly partitions).
  inCurrentSchema('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO nostrx_app_read'),
  inCurrentSchema('GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA %I TO nostrx_app_write'),
  inCurrentSchema('GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA %I TO nostrx_admin'),
  inCurrentSchema('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO nostrx_app_read'),
  inCurrentSchema('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE ON TABLES TO nostrx_app_write'),
  inCurrentSchema('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT ALL PRIVILEGES ON TABLES TO nostrx_admin'),
  // knex's migration ledger is not application data: only the owner writes it.
  `REVOKE ALL ON knex_migrations, knex_migrations_lock FROM nostrx_app_read, nostrx_app_write`,

  `ALTER TABLE user_quotas ENABLE ROW LEVEL SECURITY`,
  `CREATE POLICY user_quota_policy ON user_quotas FOR ALL TO nostrx_app_read, nostrx_app_write USING (${ownRows}) WITH CHECK (${ownRows})`,
  `CREATE POLICY user_quota_admin_policy ON user_quotas FOR ALL TO nostrx_admin USING (true) WITH CHECK (true)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error('forward-only: 0005_security cannot be rolled back; restore a backup or write a new migration');
}
