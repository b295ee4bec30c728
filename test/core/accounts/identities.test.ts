// Keys linked to an account (store/identities.ts, migration 0019), on PostgreSQL and PGlite: a linked key resolves to
// its account in every look-up and gets no account of its own; a key belongs to one account; the account's limit
// counts its primary key; unlinking revokes the key's sessions; every change has its audit row; erasing the account
// frees its keys; and a link and the key's own first event racing in two transactions end with one owner.
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { onBothDatabases } from '../../helpers/db.js';
import { newKey } from '../../helpers/events.js';
import { linkIdentity, listIdentities, unlinkIdentity } from '../../../src/store/identities.js';
import { insertSession } from '../../../src/store/sessions.js';
import { eraseUser } from '../../../src/store/user-data.js';
import {
  countAccountKeys,
  findUserByPubkey,
  findUsersWithPlans,
  upsertUserByPubkey,
} from '../../../src/store/users.js';

const opts = { label: null, maxKeys: 3, actor: 'user' };

async function auditOf(
  db: Knex,
  userId: string,
): Promise<{ operation: string; new_values: unknown; old_values: unknown }[]> {
  return (await db('audit_log')
    .where({ user_id: userId, table_name: 'user_identities' })
    .orderBy('created_at')
    .select('operation', 'new_values', 'old_values')) as {
    operation: string;
    new_values: unknown;
    old_values: unknown;
  }[];
}

async function exercise(t: Test, db: Knex): Promise<void> {
  const alice = newKey();
  const project = newKey();
  const { user } = await upsertUserByPubkey(db, alice.pk);

  t.same(await linkIdentity(db, user.id, project.pk, { ...opts, label: 'project' }), {
    status: 'linked',
    identity: {
      pubkey: project.pk,
      primary: false,
      label: 'project',
      linkedAt: (await listIdentities(db, user.id))[1]!.linkedAt,
    },
  });
  t.equal((await findUserByPubkey(db, project.pk))?.id, user.id, 'the linked key finds the account');
  t.equal((await findUserByPubkey(db, project.pk))?.pubkey, alice.pk, "whose record carries the account's primary key");
  const both = await findUsersWithPlans(db, [alice.pk, project.pk, newKey().pk]);
  t.same(
    [...both.keys()].sort(),
    [alice.pk, project.pk].sort(),
    'one look-up answers primary and linked keys, and nothing for a stranger',
  );
  const again = await upsertUserByPubkey(db, project.pk);
  t.same(
    [again.created, again.user.id],
    [false, user.id],
    'a first event of the linked key creates no account: it is the account it is linked to',
  );
  t.equal(Number((await db('users').count({ n: '*' }))[0]!.n), 1, 'no users row for the linked key');

  t.equal(
    (await linkIdentity(db, user.id, project.pk, opts)).status,
    'already_linked',
    'linking it again changes nothing',
  );
  t.equal(
    (await linkIdentity(db, user.id, alice.pk, opts)).status,
    'already_linked',
    'nor does linking the primary key',
  );

  const bob = newKey();
  const { user: bobUser } = await upsertUserByPubkey(db, bob.pk);
  t.same(
    await linkIdentity(db, bobUser.id, project.pk, opts),
    { status: 'taken', by: 'other_account' },
    "a key linked to Alice's account cannot be linked to Bob's",
  );
  t.same(
    await linkIdentity(db, user.id, bob.pk, opts),
    { status: 'taken', by: 'own_account' },
    "Bob's primary key cannot be linked to Alice's account",
  );
  // The trigger holds even for a writer that skips the checks above.
  await t.rejects(
    db('user_identities').insert({ user_id: user.id, pubkey: bob.pk }),
    { code: '23505' },
    'the database refuses a primary key as a linked key',
  );

  t.equal(
    (await linkIdentity(db, user.id, newKey().pk, opts)).status,
    'linked',
    'a third key: the limit of 3 counts the primary key',
  );
  t.same(
    await linkIdentity(db, user.id, newKey().pk, opts),
    { status: 'limit_reached', count: 3 },
    'a fourth is refused',
  );
  t.same(
    (await listIdentities(db, user.id)).map((i) => [i.primary, i.label]),
    [
      [true, null],
      [false, 'project'],
      [false, null],
    ],
    'the primary key first, then the linked ones in order',
  );

  const expires = new Date(Date.now() + 3600_000);
  const own = await insertSession(db, user.id, 'a'.repeat(64), expires, { extensionId: 'api', pubkey: project.pk });
  const primarySession = await insertSession(db, user.id, 'b'.repeat(64), expires, {
    extensionId: 'api',
    pubkey: alice.pk,
  });
  t.equal(await unlinkIdentity(db, user.id, project.pk, { actor: 'user', now: new Date() }), true);
  t.equal(
    await unlinkIdentity(db, bobUser.id, project.pk, { actor: 'user', now: new Date() }),
    false,
    'a key is unlinked only from its account',
  );
  const sessions = (await db('user_sessions').select('id', 'revoked_at', 'revoked_reason')) as {
    id: string;
    revoked_at: Date | null;
    revoked_reason: string | null;
  }[];
  t.match(
    sessions.find((s) => s.id === own.id),
    { revoked_reason: 'key unlinked from the account' },
    "the unlinked key's sessions are revoked with it",
  );
  t.equal(sessions.find((s) => s.id === primarySession.id)?.revoked_at, null, "the primary key's are not");
  t.equal(await findUserByPubkey(db, project.pk), undefined, 'the unlinked key has no account any more');
  const fresh = await upsertUserByPubkey(db, project.pk);
  t.ok(fresh.created && fresh.user.id !== user.id, 'its next event makes an account of its own');

  t.same(
    (await auditOf(db, user.id)).map((a) => a.operation),
    ['INSERT', 'INSERT', 'DELETE'],
    'each link and unlink has its audit row',
  );
  t.match((await auditOf(db, user.id))[2], { old_values: { pubkey: project.pk }, new_values: { sessions_revoked: 1 } });

  const third = (await listIdentities(db, user.id))[1]!.pubkey;
  t.equal(await eraseUser(db, user.id), true);
  t.equal(await findUserByPubkey(db, third), undefined, 'erasing the account frees its linked keys');
  t.equal((await upsertUserByPubkey(db, third)).created, true);
  t.equal((await upsertUserByPubkey(db, alice.pk)).created, true, 'and its primary key');
  // the erasure replaced the account's key in place (store/user-data.ts): the claims of migration 0033 followed it
  const rows = Number((await db('users').count({ n: '*' }))[0]!.n);
  const links = Number((await db('user_identities').count({ n: '*' }))[0]!.n);
  t.equal(await countAccountKeys(db), rows + links, 'one claimed key for every account and every link, no more');
}

t.test('linked keys, one owner each, audited', async (t) => onBothDatabases(t, exercise));

t.test('a link and the first event of the same key at once: one owner, whichever commits first', async (t) => {
  // PostgreSQL only: PGlite has one connection, so two transactions never overlap there.
  const { createTestDatabase } = await import('../../helpers/db.js');
  const db = (await createTestDatabase(t)).knex;
  for (let round = 0; round < 10; round++) {
    const { user } = await upsertUserByPubkey(db, newKey().pk);
    const key = newKey().pk;
    const [link, first] = await Promise.all([linkIdentity(db, user.id, key, opts), upsertUserByPubkey(db, key)]);
    const linked = link.status === 'linked';
    t.equal(
      first.user.id === user.id,
      linked,
      `round ${round}: the key's first event lands in the account iff the link won (${link.status})`,
    );
    const owners =
      Number((await db('users').where({ nostr_public_key: key }).count({ n: '*' }))[0]!.n) +
      Number((await db('user_identities').where({ pubkey: key }).count({ n: '*' }))[0]!.n);
    t.equal(owners, 1, `round ${round}: the key has exactly one owner`);
  }
});
