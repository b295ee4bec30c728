// Payments older than PAYMENTS_ARCHIVE_YEARS (7) are archived by maintenance, as the founding schema's retention
// policy says: kept (accounting records), but out of the user's history. Newer ones are untouched.
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { onBothDatabases } from '../../helpers/db.js';
import { newKey } from '../../helpers/events.js';
import { archivePaymentsOlderThan, listPayments } from '../../../src/store/payments.js';
import { upsertUserByPubkey } from '../../../src/store/users.js';
import { startMaintenance } from '../../../src/core/ops/maintenance.js';
import { pino } from 'pino';
import { waitFor } from '../../helpers/wait-for.js';

async function paid(db: Knex, userId: string, id: string, yearsAgo: number): Promise<void> {
  await db('payments').insert({
    user_id: userId,
    amount: '5.00',
    status: 'succeeded',
    provider_payment_id: id,
    created_at: db.raw(`now() - make_interval(years => ?) + interval '1 day'`, [yearsAgo]),
  });
}

async function exercise(t: Test, db: Knex): Promise<void> {
  const { user } = await upsertUserByPubkey(db, newKey().pk);
  await paid(db, user.id, 'recent', 0);
  await paid(db, user.id, 'six-years', 6);
  await paid(db, user.id, 'eight-years', 8);
  // one day short of seven years: not yet
  await paid(db, user.id, 'almost-seven', 7);

  t.equal(await archivePaymentsOlderThan(db, 7), 1, 'the payment made over seven years ago');
  t.equal(await archivePaymentsOlderThan(db, 7), 0, 'a second run finds nothing');
  const listed = (await listPayments(db, user.id)).map((p) => p.providerPaymentId).sort();
  t.same(listed, ['almost-seven', 'recent', 'six-years'], "out of the user's history");
  const kept = (await db('payments').where({ user_id: user.id }).count<{ count: string }[]>('* as count'))[0]!;
  t.equal(Number(kept.count), 4, 'and still stored');

  // Maintenance does it at start (and hourly), with the setting.
  await paid(db, user.id, 'nine-years', 9);
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const m = startMaintenance({ db, log, retention: { usage_events: 0, relay_publishes: 0 }, paymentsArchiveYears: 7 });
  t.teardown(() => m.stop());
  await waitFor('the archive line in the log', () => lines.some((l) => l.includes('old payments archived')));
  t.ok(
    lines.some((l) => l.includes('old payments archived') && l.includes('"archived":1')),
    'logged with the count',
  );
  t.notOk(
    (await listPayments(db, user.id)).some((p) => p.providerPaymentId === 'nine-years'),
    'archived at start',
  );
}

t.test('old payments are archived, not deleted', async (t) => onBothDatabases(t, exercise));
