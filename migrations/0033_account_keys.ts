// ACCOUNTS: "a key is either some account's primary key or some account's linked key, never both" (migration 0019)
// kept by one UNIQUE index instead of a lock per key.
//
// 0019's triggers took a transaction-scoped advisory lock on every key they saw, and such a lock holds a slot of the
// server's *shared* lock table (max_locks_per_transaction × max_connections, 6,400 as installed) until its
// transaction ends. A statement that saved thousands of new accounts, or a few relay processes saving hundreds each,
// could fill the table, and a full table fails every transaction on the server that needs a lock, not only ours; the
// callers had to cut their statements small (store/users.ts, core/admission/group-commit.ts) for that reason alone.
//
// account_keys holds every key that names an account, once, with which kind it is. Both tables' triggers insert into
// it before their own row is written, so its primary key orders a link and a first event of the same key arriving
// at once in two processes: the second insert waits for the first transaction (on its transaction id, one lock
// however many keys) and then sees what it committed:
//   - a new users row for a key that is linked is skipped (the BEFORE trigger returns NULL), as if the
//     INSERT … ON CONFLICT DO NOTHING had met a conflict; the look-up that follows finds the account it is linked to.
//     A key that is already some account's primary key lets the row through, so that the INSERT's own ON CONFLICT
//     clause meets the users row and does what it says (DO UPDATE … RETURNING answers with that account);
//   - linking a key that is already in the table, as a primary or a linked key, fails with unique_violation (23505).
// Deleting either row (an account's removal cascades to its links) removes the key, so it can name an account again.
// The key is stored as its 32 bytes: 41 bytes of index entry a key instead of 72 for its hex text.
import type { Knex } from 'knex';

const key = (column: string) => `decode(${column}, 'hex')`;

const statements: readonly string[] = [
  `CREATE TABLE account_keys (
    key BYTEA PRIMARY KEY,
    linked BOOLEAN NOT NULL
  )`,

  `DROP TRIGGER users_skip_linked_key ON users`,
  `DROP FUNCTION nostrx_users_skip_linked_key()`,
  `DROP TRIGGER user_identities_not_primary ON user_identities`,
  `DROP FUNCTION nostrx_identities_refuse_primary_key()`,

  // A key found in the table may be gone by the time it is read (its row deleted and committed in between): then
  // the insert is tried again, and succeeds or meets the key's next owner.
  `CREATE FUNCTION nostrx_users_claim_key() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    is_linked boolean;
  BEGIN
    LOOP
      INSERT INTO account_keys (key, linked) VALUES (${key('NEW.nostr_public_key')}, false) ON CONFLICT DO NOTHING;
      IF FOUND THEN
        RETURN NEW;
      END IF;
      SELECT linked INTO is_linked FROM account_keys WHERE key = ${key('NEW.nostr_public_key')};
      IF FOUND THEN
        IF is_linked THEN
          RETURN NULL;
        END IF;
        RETURN NEW;
      END IF;
    END LOOP;
  END
  $$`,
  `CREATE TRIGGER users_claim_key BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION nostrx_users_claim_key()`,

  `CREATE FUNCTION nostrx_identities_claim_key() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO account_keys (key, linked) VALUES (${key('NEW.pubkey')}, true);
    RETURN NEW;
  END
  $$`,
  `CREATE TRIGGER user_identities_claim_key BEFORE INSERT ON user_identities
    FOR EACH ROW EXECUTE FUNCTION nostrx_identities_claim_key()`,

  // An erasure replaces the account's key with random bytes (store/user-data.ts eraseUser): the old key is freed.
  `CREATE FUNCTION nostrx_account_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    old_key bytea := ${key(`to_jsonb(OLD) ->> TG_ARGV[0]`)};
    new_key bytea := ${key(`to_jsonb(NEW) ->> TG_ARGV[0]`)};
  BEGIN
    IF new_key IS DISTINCT FROM old_key THEN
      INSERT INTO account_keys (key, linked) VALUES (new_key, TG_TABLE_NAME = 'user_identities');
      DELETE FROM account_keys WHERE key = old_key;
    END IF;
    RETURN NEW;
  END
  $$`,
  `CREATE TRIGGER users_key_changed BEFORE UPDATE OF nostr_public_key ON users
    FOR EACH ROW EXECUTE FUNCTION nostrx_account_key_changed('nostr_public_key')`,
  `CREATE TRIGGER user_identities_key_changed BEFORE UPDATE OF pubkey ON user_identities
    FOR EACH ROW EXECUTE FUNCTION nostrx_account_key_changed('pubkey')`,

  `CREATE FUNCTION nostrx_account_key_released() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    DELETE FROM account_keys WHERE key = ${key(`to_jsonb(OLD) ->> TG_ARGV[0]`)};
    RETURN OLD;
  END
  $$`,
  `CREATE TRIGGER users_key_released AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION nostrx_account_key_released('nostr_public_key')`,
  `CREATE TRIGGER user_identities_key_released AFTER DELETE ON user_identities
    FOR EACH ROW EXECUTE FUNCTION nostrx_account_key_released('pubkey')`,

  // TRUNCATE fires no row trigger: the keys of the emptied table go with it.
  `CREATE FUNCTION nostrx_account_keys_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    DELETE FROM account_keys WHERE linked = (TG_TABLE_NAME = 'user_identities');
    RETURN NULL;
  END
  $$`,
  `CREATE TRIGGER users_keys_truncated AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION nostrx_account_keys_truncated()`,
  `CREATE TRIGGER user_identities_keys_truncated AFTER TRUNCATE ON user_identities
    FOR EACH STATEMENT EXECUTE FUNCTION nostrx_account_keys_truncated()`,

  // The triggers above hold both tables against writes (CREATE TRIGGER takes a lock that conflicts with INSERT) until
  // this migration commits, so no key is written between the copy and the triggers.
  `INSERT INTO account_keys (key, linked) SELECT ${key('nostr_public_key')}, false FROM users`,
  `INSERT INTO account_keys (key, linked) SELECT ${key('pubkey')}, true FROM user_identities`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error('forward-only: 0033_account_keys cannot be rolled back; restore a backup or write a new migration');
}
