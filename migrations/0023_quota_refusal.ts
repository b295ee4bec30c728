// PERFORMANCE: a group commit with posts counted against a cap is one statement, like one without (issue #19). Its
// charge of the ledger is a conditional upsert: a (user, period) row grows only when the batch's posts fit under
// the limit. When one does not, the statement must not commit the events it has just inserted, and a statement
// cannot delete rows it inserted itself; it raises this error instead, which rolls the whole statement back
// (events, tags, outbox rows, accounts, counts), and the writer (core/admission/group-commit.ts) stores that batch
// again in a transaction that charges each post on its own and takes back the refused ones. The Redis counters
// refuse almost every post over a cap before it gets here, so the fallback is rare.
// The code is the writer's to recognise (store/retryable-errors.ts isQuotaRefusal); 'NX' is no SQLSTATE class of
// PostgreSQL's own.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION nostrx_quota_refused(refused_user uuid, refused_type text, refused_date date) RETURNS text
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
      RAISE EXCEPTION 'the % quota of user % for % has no room for this batch', refused_type, refused_user, refused_date
        USING ERRCODE = 'NXQ01';
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP FUNCTION IF EXISTS nostrx_quota_refused(uuid, text, date)`);
}
