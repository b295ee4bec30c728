// EXTENSION: several Nostr keys on one account (plans with `multiple_identities`, issue #23).
//
// users.nostr_public_key stays the account's one primary key, UNIQUE as before. Further keys live in
// user_identities, one row per linked key, `pubkey` UNIQUE: a key is linked to one account at most. The rule the
// two UNIQUE constraints cannot express together, "a key is either some account's primary key or some account's
// linked key, never both", is kept by the two triggers below. Both take the same transaction-scoped advisory lock on
// the key before they look at the other table, so a link and a first event of the same key, arriving at the same
// moment in two processes, are ordered; the second one sees what the first committed (READ COMMITTED: every
// statement of a plpgsql function reads a fresh snapshot):
//   - a new users row for a key that is already linked is skipped (the BEFORE trigger returns NULL), as if the
//     INSERT … ON CONFLICT DO NOTHING had met a conflict; the look-up that follows finds the account it is linked to;
//   - linking a key that is some account's primary key fails with unique_violation (23505), like a duplicate link.
// The lock is a hash of the key (64 bits): two keys sharing a hash are merely serialised for a moment.
//
// user_sessions.pubkey: the key that signed the NIP-98 request that started the session (NULL for sessions started
// before this migration: the account's primary key). A session then acts as that key (POST /v1/events accepts its
// events), and unlinking the key revokes its sessions in the same transaction.
import type { Knex } from 'knex';

const lockKey = (column: string) => `pg_advisory_xact_lock(hashtextextended('nostrx-pubkey:' || NEW.${column}, 0))`;

const statements: readonly string[] = [
  `CREATE TABLE user_identities (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    pubkey VARCHAR(64) NOT NULL,
    label VARCHAR(100),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_identities_pubkey_key UNIQUE (pubkey),
    CONSTRAINT valid_identity_pubkey CHECK (octet_length(pubkey) = 64 AND pubkey !~ '[^0-9a-f]')
  )`,
  `CREATE INDEX idx_user_identities_user ON user_identities (user_id)`,

  `CREATE FUNCTION nostrx_users_skip_linked_key() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM ${lockKey('nostr_public_key')};
    IF EXISTS (SELECT 1 FROM user_identities WHERE pubkey = NEW.nostr_public_key) THEN
      RETURN NULL;
    END IF;
    RETURN NEW;
  END
  $$`,
  `CREATE TRIGGER users_skip_linked_key BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION nostrx_users_skip_linked_key()`,

  `CREATE FUNCTION nostrx_identities_refuse_primary_key() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM ${lockKey('pubkey')};
    IF EXISTS (SELECT 1 FROM users WHERE nostr_public_key = NEW.pubkey) THEN
      RAISE EXCEPTION 'the key % is the primary key of an account', NEW.pubkey
        USING ERRCODE = 'unique_violation', CONSTRAINT = 'user_identities_not_primary';
    END IF;
    RETURN NEW;
  END
  $$`,
  `CREATE TRIGGER user_identities_not_primary BEFORE INSERT OR UPDATE OF pubkey ON user_identities FOR EACH ROW EXECUTE FUNCTION nostrx_identities_refuse_primary_key()`,

  `ALTER TABLE user_sessions ADD COLUMN pubkey VARCHAR(64)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0019_user_identities cannot be rolled back; restore a backup or write a new migration',
  );
}
