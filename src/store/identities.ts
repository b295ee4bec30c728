// user_identities: the Nostr keys linked to an account besides its primary key (users.nostr_public_key). Linking
// and unlinking each run in one transaction with the account row locked, so that two links at once cannot both
// pass the account's limit; the triggers of migration 0033 (account_keys) keep a key from being both a primary and a
// linked key.
import type { Knex } from 'knex';
import { writeAudit } from './audit.js';

export interface IdentityRecord {
  readonly pubkey: string;
  /** true for the account's primary key (users.nostr_public_key), which cannot be unlinked. */
  readonly primary: boolean;
  readonly label: string | null;
  /** When the key was linked; for the primary key, when the account was created. */
  readonly linkedAt: Date;
}

interface IdentityRow {
  pubkey: string;
  label: string | null;
  created_at: Date;
}

/** The account's keys: the primary key first, then the linked ones in the order they were linked. */
export async function listIdentities(db: Knex, userId: string): Promise<IdentityRecord[]> {
  const user = (await db('users').where({ id: userId }).first('nostr_public_key', 'created_at')) as
    { nostr_public_key: string; created_at: Date } | undefined;
  if (!user) return [];
  const rows = (await db('user_identities')
    .where({ user_id: userId })
    .orderBy([{ column: 'created_at' }, { column: 'pubkey' }])
    .select('pubkey', 'label', 'created_at')) as IdentityRow[];
  return [
    { pubkey: user.nostr_public_key, primary: true, label: null, linkedAt: new Date(user.created_at) },
    ...rows.map((r) => ({ pubkey: r.pubkey, primary: false, label: r.label, linkedAt: new Date(r.created_at) })),
  ];
}

export type LinkOutcome =
  | { readonly status: 'linked'; readonly identity: IdentityRecord }
  | { readonly status: 'already_linked'; readonly identity: IdentityRecord }
  /** The key is the primary key of an account of its own (`own_account`), or linked to another account. */
  | { readonly status: 'taken'; readonly by: 'own_account' | 'other_account' }
  | { readonly status: 'limit_reached'; readonly count: number }
  | { readonly status: 'no_user' };

const UNIQUE_VIOLATION = '23505';

async function primaryKeyExists(db: Knex, pubkey: string): Promise<boolean> {
  return (await db('users').where({ nostr_public_key: pubkey }).first('id')) !== undefined;
}

/**
 * Links `pubkey` to the account, unless the account already has `maxKeys` keys (its primary key counts), with its
 * audit row, in one transaction. A key the account already has is answered `already_linked`, unchanged.
 */
export async function linkIdentity(
  db: Knex,
  userId: string,
  pubkey: string,
  opts: { label: string | null; maxKeys: number; actor: string },
): Promise<LinkOutcome> {
  try {
    return await db.transaction(async (trx): Promise<LinkOutcome> => {
      const user = (await trx('users').where({ id: userId }).forUpdate().first('nostr_public_key', 'created_at')) as
        { nostr_public_key: string; created_at: Date } | undefined;
      if (!user) return { status: 'no_user' };
      if (user.nostr_public_key === pubkey) {
        return {
          status: 'already_linked',
          identity: { pubkey, primary: true, label: null, linkedAt: new Date(user.created_at) },
        };
      }
      const owner = (await trx('user_identities').where({ pubkey }).first('user_id', 'label', 'created_at')) as
        { user_id: string; label: string | null; created_at: Date } | undefined;
      if (owner) {
        if (owner.user_id !== userId) return { status: 'taken', by: 'other_account' };
        return {
          status: 'already_linked',
          identity: { pubkey, primary: false, label: owner.label, linkedAt: new Date(owner.created_at) },
        };
      }
      if (await primaryKeyExists(trx, pubkey)) return { status: 'taken', by: 'own_account' };
      const linked = Number(
        ((await trx('user_identities').where({ user_id: userId }).count({ n: '*' })) as { n: string | number }[])[0]
          ?.n ?? 0,
      );
      if (linked + 1 >= opts.maxKeys) return { status: 'limit_reached', count: linked + 1 };
      const [row] = (await trx('user_identities')
        .insert({ user_id: userId, pubkey, label: opts.label })
        .returning(['created_at'])) as { created_at: Date }[];
      await writeAudit(trx, {
        table: 'user_identities',
        operation: 'INSERT',
        userId,
        newValues: { pubkey, label: opts.label },
        actor: opts.actor,
      });
      return {
        status: 'linked',
        identity: { pubkey, primary: false, label: opts.label, linkedAt: new Date(row!.created_at) },
      };
    });
  } catch (err) {
    // Lost a race for this pubkey: to another account's link, or to the key's own first event (account_keys,
    // migration 0033).
    if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
    return { status: 'taken', by: (await primaryKeyExists(db, pubkey)) ? 'own_account' : 'other_account' };
  }
}

/**
 * Unlinks `pubkey` from the account and revokes the sessions it started, with the audit row, in one transaction.
 * False when the key is not linked to this account.
 */
export async function unlinkIdentity(
  db: Knex,
  userId: string,
  pubkey: string,
  opts: { actor: string; now: Date },
): Promise<boolean> {
  return db.transaction(async (trx) => {
    const removed = (await trx('user_identities').where({ user_id: userId, pubkey }).delete().returning(['label'])) as {
      label: string | null;
    }[];
    if (removed.length === 0) return false;
    const revoked = await trx('user_sessions')
      .where({ user_id: userId, pubkey, is_active: true })
      .whereNull('revoked_at')
      .update({ is_active: false, revoked_at: opts.now, revoked_reason: 'key unlinked from the account' });
    await writeAudit(trx, {
      table: 'user_identities',
      operation: 'DELETE',
      userId,
      oldValues: { pubkey, label: removed[0]?.label ?? null },
      newValues: { sessions_revoked: revoked },
      actor: opts.actor,
    });
    return true;
  });
}
