// An author's look-up reads their plan with their row (core/accounts/accounts.ts → core/quota/plans.ts learn): after it, the
// effective plan needs no query of its own, for a subscriber, for a user without a subscription and for a user
// just created; what a look-up read before a plan change is not kept.
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { onBothDatabases } from '../../helpers/db.js';
import { newKey } from '../../helpers/events.js';
import { subscribeUser } from '../../helpers/forwarding.js';
import { waitFor } from '../../helpers/wait-for.js';
import { upsertUserByPubkey } from '../../../src/store/users.js';
import { createAccounts } from '../../../src/core/accounts/accounts.js';
import { createPlans } from '../../../src/core/quota/plans.js';
import { createLogger } from '../../../src/log.js';

const log = createLogger('silent');

/** Counts the statements that read subscriptions (the plans module's own look-up) from now on. */
function subscriptionReads(db: Knex): () => number {
  let n = 0;
  db.on('query', (q: { sql: string }) => {
    if (/^select/i.test(q.sql) && q.sql.includes('user_subscriptions')) n++;
  });
  return () => n;
}

async function exercise(t: Test, db: Knex): Promise<void> {
  const plans = createPlans(db);
  const accounts = createAccounts(db, { plans, log });
  const premium = newKey().pk;
  await upsertUserByPubkey(db, premium);
  await subscribeUser(db, premium, 'premium');
  const plain = newKey().pk;
  await upsertUserByPubkey(db, plain);
  const reads = subscriptionReads(db);

  const [sub, user] = await Promise.all([accounts.find(premium), accounts.find(plain)]);
  t.equal((await plans.effectivePlan(sub!.id)).code, 'premium', "a subscriber's plan comes with their row");
  t.equal((await plans.effectivePlan(user!.id)).code, 'basic', 'no subscription: the default plan');
  t.equal(await accounts.find(newKey().pk), undefined, 'an unknown pubkey is not created by find');
  const created = await accounts.forPubkey(newKey().pk);
  t.equal((await plans.effectivePlan(created.id)).code, 'basic', 'a user just created is on the default plan');
  t.equal(reads(), 0, 'none of these read the subscriptions again');

  // What a look-up read before an invalidation is not kept: it may be the plan as it was before the change.
  const learn = plans.learn(); // a look-up starts
  await subscribeUser(db, plain, 'advanced');
  plans.invalidateUser(user!.id);
  learn(user!.id, ''); // it read no subscription
  t.equal(
    (await plans.effectivePlan(user!.id)).code,
    'advanced',
    'the plan read after the change, not the one read before it',
  );
  t.equal(reads(), 1, 'by a query of its own');
}

t.test("an author's plan is read with their row", async (t) => onBothDatabases(t, exercise));

// A new author's unsaved account: the same for each of their events until it is saved, then the saved one; a few
// kept (the oldest dropped first), and not past its time (a failed write is not remembered for ever).
t.test("a new author's unsaved account", async (t) => {
  const db = (await import('knex')).default({ client: 'pg', connection: 'postgres://127.0.0.1:1/none' }); // no I/O here
  t.teardown(() => db.destroy());
  const accounts = createAccounts(db, { log, max: 2, ttlMs: 50 });
  const [a, b, c] = [newKey().pk, newKey().pk, newKey().pk];
  const first = accounts.forNewAuthor(a);
  t.ok(first.unsaved);
  t.equal(accounts.forNewAuthor(a).id, first.id, 'the same id for their next event');
  const { unsaved: _, ...stored } = first;
  accounts.saved(stored);
  t.same(accounts.forNewAuthor(a), stored, 'once saved, the saved account');

  const bFirst = accounts.forNewAuthor(b);
  accounts.forNewAuthor(c);
  t.equal(accounts.forNewAuthor(b).id, bFirst.id, 'two kept');
  const cId = accounts.forNewAuthor(c).id;
  accounts.forNewAuthor(newKey().pk); // a third: the oldest (b) goes
  t.not(accounts.forNewAuthor(b).id, bFirst.id, 'the oldest dropped past the bound');

  const started = Date.now();
  await waitFor('its time to pass', async () => Date.now() - started > 50);
  t.not(accounts.forNewAuthor(c).id, cId, 'not kept past its time');
});
