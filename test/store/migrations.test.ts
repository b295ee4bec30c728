// The migrations build the same schema on PostgreSQL 15 (the server) and on PGlite (PostgreSQL 18), run once,
// and the repaired constraints of the founding schema behave as intended on both.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import { createTestDatabase, createTestDatabaseUrl, onBothDatabases } from '../helpers/db.js';
import { openDatabase, type Database } from '../../src/store/db.js';
import { migrateLatest, migrationSource, migrationsDir } from '../../src/store/migrate.js';
import { dropPartitionsBefore, ensureMonthlyPartitions } from '../../src/store/partitions.js';
import { storedTagValue } from '../helpers/tag-rows.js';
import { addDailyStats } from '../../src/store/usage.js';
import { upsertUsersByPubkeys } from '../../src/store/users.js';
import { saveEvent } from '../../src/store/events.js';
import { buildEvent, newKey } from '../helpers/events.js';

const migrationNames = fs
  .readdirSync(migrationsDir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

const tables = [
  'users',
  'user_sessions',
  'subscription_plans',
  'user_subscriptions',
  'payments',
  'payment_webhook_events',
  'user_quotas',
  'usage_events',
  'daily_usage_stats',
  'nostr_events',
  'nostr_event_tags',
  'user_relays',
  'relay_publishes',
  'relay_bans',
  'audit_log',
];

const hex = (chars: number): string => randomBytes(chars / 2).toString('hex');

function monthPartition(table: string, now: Date, ahead: number): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + ahead, 1));
  return `${table}_y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

async function rows<T>(knex: Knex, sql: string, bindings: readonly Knex.Value[] = []): Promise<T[]> {
  return ((await knex.raw(sql, bindings)) as { rows: T[] }).rows;
}

async function newUser(knex: Knex): Promise<string> {
  const [row] = (await knex('users')
    .insert({ nostr_public_key: hex(64) })
    .returning('id')) as { id: string }[];
  return row!.id;
}

/** A new user with one relay row of theirs at `url`. */
async function userWithRelay(knex: Knex, url: string): Promise<{ userId: string; relayId: string }> {
  const userId = await newUser(knex);
  const [relay] = (await knex('user_relays').insert({ user_id: userId, relay_url: url }).returning('id')) as {
    id: string;
  }[];
  return { userId, relayId: relay!.id };
}

/** Stores an event of the user's in `trx` and queues it for their relay, as the group commit does; its row id. */
async function storeQueued(
  trx: Knex.Transaction,
  owner: { userId: string; relayId: string },
  url: string,
): Promise<{ eventId: string; rowId: string }> {
  const ev = buildEvent(newKey().sk, { tags: [['t', url]] });
  await saveEvent(trx, ev, { userId: owner.userId, dTag: null, expiresAt: undefined });
  const [row] = (await trx('nostr_events').where({ event_id: ev.id }).select('id')) as { id: string }[];
  await trx('relay_publishes').insert({ event_id: row!.id, user_relay_id: owner.relayId, relay_url: url });
  return { eventId: ev.id, rowId: row!.id };
}

async function planId(knex: Knex, code: string): Promise<string> {
  const row = (await knex('subscription_plans').where({ plan_code: code }).first('id')) as { id: string };
  return row.id;
}

interface EventInput {
  pubkey: string;
  event_kind: number;
  d_tag?: string | null;
  tags?: string[][];
  content?: string;
  created_at_nostr?: number | string;
  event_id?: string;
  sig?: string;
}

async function newEvent(knex: Knex, userId: string, e: EventInput): Promise<string> {
  const [row] = (await knex('nostr_events')
    .insert({
      user_id: userId,
      event_id: e.event_id ?? hex(64),
      pubkey: e.pubkey,
      event_kind: e.event_kind,
      created_at_nostr: e.created_at_nostr ?? 1_700_000_000,
      content: e.content ?? '',
      tags: JSON.stringify(e.tags ?? []),
      // stored as its bytes (migration 0027)
      sig: knex.raw("decode(?, 'hex')", [e.sig ?? hex(128)]),
      d_tag: e.d_tag ?? null,
    })
    .returning('id')) as { id: string }[];
  return row!.id;
}

/** The whole behavioural check, run against the server and against PGlite. */
async function checkSchema(t: Test, knex: Knex): Promise<void> {
  await t.test('every table exists, without the ones the repairs removed', async (t) => {
    const names = (
      await rows<{ relname: string }>(
        knex,
        `SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = current_schema()::regnamespace`,
      )
    ).map((r) => r.relname);
    for (const table of [...tables, 'knex_migrations']) t.ok(names.includes(table), `${table} exists`);
    t.notOk(names.includes('schema_migrations'), 'no second migration ledger beside knex_migrations');
    const emailEncrypted = await rows(
      knex,
      `SELECT 1 FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email_encrypted'`,
    );
    t.equal(emailEncrypted.length, 0, 'users.email_encrypted is not created');
  });

  await t.test('the three plans are seeded as the spec gives them', async (t) => {
    const plans = await knex('subscription_plans')
      .select(
        'plan_code',
        'name',
        'price_monthly',
        'price_yearly',
        'daily_post_limit',
        'monthly_post_limit',
        'custom_relays_allowed',
        'analytics_enabled',
        'multiple_identities',
        'sort_order',
      )
      .orderBy('sort_order');
    t.same(plans, [
      {
        plan_code: 'basic',
        name: 'Basic',
        price_monthly: '0.00',
        price_yearly: null,
        daily_post_limit: 3,
        monthly_post_limit: null,
        custom_relays_allowed: false,
        analytics_enabled: false,
        multiple_identities: false,
        sort_order: 10,
      },
      {
        plan_code: 'premium',
        name: 'Premium',
        price_monthly: '4.99',
        price_yearly: null,
        daily_post_limit: 25,
        monthly_post_limit: null,
        custom_relays_allowed: true,
        analytics_enabled: true,
        multiple_identities: false,
        sort_order: 20,
      },
      {
        plan_code: 'advanced',
        name: 'Advanced',
        price_monthly: '9.99',
        price_yearly: null,
        daily_post_limit: -1,
        monthly_post_limit: null,
        custom_relays_allowed: true,
        analytics_enabled: true,
        multiple_identities: true,
        sort_order: 30,
      },
    ]);
  });

  await t.test(
    'usage_events and relay_publishes are partitioned by month, this month and the next exist',
    async (t) => {
      const keys = await rows<{ relname: string; strategy: string; key: string }>(
        knex,
        `SELECT c.relname, pt.partstrat::text AS strategy, a.attname AS key
       FROM pg_partitioned_table pt
       JOIN pg_class c ON c.oid = pt.partrelid
       JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
       ORDER BY c.relname`,
      );
      t.same(keys, [
        { relname: 'relay_publishes', strategy: 'r', key: 'created_at' },
        { relname: 'usage_events', strategy: 'r', key: 'occurred_at' },
      ]);
      const now = new Date();
      for (const table of ['usage_events', 'relay_publishes']) {
        const parts = (
          await rows<{ name: string }>(
            knex,
            `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = ?::regclass`,
            [table],
          )
        ).map((r) => r.name);
        t.ok(parts.includes(monthPartition(table, now, 0)), `${table} has this month's partition`);
        t.ok(parts.includes(monthPartition(table, now, 1)), `${table} has next month's partition`);
      }
      const userId = await newUser(knex);
      const [usage] = await rows<{ part: string }>(
        knex,
        `INSERT INTO usage_events (user_id, event_type, event_action) VALUES (?, 'quota_usage', 'post_created') RETURNING tableoid::regclass::text AS part`,
        [userId],
      );
      t.equal(usage!.part, monthPartition('usage_events', now, 0), 'a usage event of now lands in this month');
      await t.rejects(
        knex('usage_events').insert({ user_id: null, event_type: 'quota_usage', event_action: 'x' }),
        { code: '23502' },
        'usage_events.user_id is NOT NULL (was CHECK (user_id IS NOT NULL))',
      );
    },
  );

  await t.test('one active subscription per user, with any number of past ones', async (t) => {
    const userId = await newUser(knex);
    const basic = await planId(knex, 'basic');
    const premium = await planId(knex, 'premium');
    const [first] = (await knex('user_subscriptions')
      .insert({ user_id: userId, plan_id: basic, amount: '0.00' })
      .returning('id')) as { id: string }[];
    await t.rejects(
      knex('user_subscriptions').insert({ user_id: userId, plan_id: premium, amount: '4.99' }),
      { code: '23505' },
      'a second active subscription is refused',
    );
    await knex('user_subscriptions').insert([
      { user_id: userId, plan_id: premium, amount: '4.99', status: 'canceled' },
      { user_id: userId, plan_id: premium, amount: '4.99', status: 'canceled' },
    ]);
    await knex.transaction(async (trx) => {
      await trx('user_subscriptions')
        .where({ id: first!.id })
        .update({ status: 'canceled', canceled_at: trx.fn.now() });
      await trx('user_subscriptions').insert({ user_id: userId, plan_id: premium, amount: '4.99' });
    });
    const counts = await rows<{ status: string; n: string }>(
      knex,
      `SELECT status::text, count(*)::text AS n FROM user_subscriptions WHERE user_id = ? GROUP BY status ORDER BY status`,
      [userId],
    );
    t.same(
      counts,
      [
        { status: 'active', n: '1' },
        { status: 'canceled', n: '3' },
      ],
      'history is kept, one is active',
    );
  });

  await t.test('the quota ledger refuses usage beyond a limit, except -1 (unlimited)', async (t) => {
    const userId = await newUser(knex);
    const farFuture = '2999-01-01'; // the spec's CHECK (quota_date <= CURRENT_DATE) is gone
    await knex('user_quotas').insert({
      user_id: userId,
      quota_date: '2026-01-01',
      posts_limit: 3,
      posts_used: 3,
      resets_at: '2026-01-02T00:00:00Z',
    });
    await t.rejects(
      knex('user_quotas').where({ user_id: userId, quota_date: '2026-01-01' }).increment('posts_used', 1),
      { code: '23514' },
      'the fourth post of a 3-post day is refused',
    );
    await knex('user_quotas').insert({
      user_id: userId,
      quota_date: farFuture,
      posts_limit: -1,
      posts_used: 1000,
      resets_at: '2999-01-02T00:00:00Z',
    });
    await knex('user_quotas').where({ user_id: userId, quota_date: farFuture }).increment('posts_used', 1);
    const row = (await knex('user_quotas').where({ user_id: userId, quota_date: farFuture }).first('posts_used')) as {
      posts_used: number;
    };
    t.equal(row.posts_used, 1001, 'an unlimited day keeps counting');
    await t.rejects(
      knex('user_quotas').insert({
        user_id: userId,
        quota_date: '2026-01-01',
        posts_limit: 3,
        resets_at: '2026-01-02T00:00:00Z',
      }),
      { code: '23505' },
      'one ledger row per user, day and quota type',
    );
  });

  await t.test('one live version of a replaceable or addressable event', async (t) => {
    const userId = await newUser(knex);
    const pubkey = hex(64);
    const first = await newEvent(knex, userId, { pubkey, event_kind: 0, d_tag: '' });
    await t.rejects(
      newEvent(knex, userId, { pubkey, event_kind: 0, d_tag: '' }),
      { code: '23505' },
      'a second live kind-0 is refused',
    );
    await newEvent(knex, userId, { pubkey, event_kind: 30023, d_tag: 'a' });
    await newEvent(knex, userId, { pubkey, event_kind: 30023, d_tag: 'b' });
    await t.rejects(
      newEvent(knex, userId, { pubkey, event_kind: 30023, d_tag: 'a' }),
      { code: '23505' },
      'same d, same kind: refused',
    );
    await newEvent(knex, userId, { pubkey, event_kind: 1 });
    await newEvent(knex, userId, { pubkey, event_kind: 1 });
    t.pass('regular events (d_tag NULL) do not conflict');
    await knex('nostr_events').where({ id: first }).update({ removed_at: knex.fn.now(), removed_reason: 'replaced' });
    await newEvent(knex, userId, { pubkey, event_kind: 0, d_tag: '' });
    t.pass('once the old version is removed, the new one is live');
    await t.rejects(
      knex('nostr_events').where({ id: first }).update({ removed_reason: 'forgotten' }),
      { code: '23514' },
      'removed_reason is one of the known reasons',
    );
  });

  await t.test('one tag row per (name, value) of an event, found newest first by (name, value)', async (t) => {
    const userId = await newUser(knex);
    const pubkey = hex(64);
    const older = await newEvent(knex, userId, { pubkey, event_kind: 1, created_at_nostr: 100 });
    const newer = await newEvent(knex, userId, { pubkey, event_kind: 1, created_at_nostr: 200 });
    const tag = (eventRowId: string, createdAt: number) => ({
      event_row_id: eventRowId,
      name: 't',
      value: knex.raw('nostrx_tag_key(?)', ['nostr']),
      created_at_nostr: createdAt,
      event_kind: 1,
    });
    await knex('nostr_event_tags').insert([tag(older, 100), tag(newer, 200)]);
    await t.rejects(
      knex('nostr_event_tags').insert(tag(older, 100)),
      { code: '23505' },
      'the same tag of the same event twice is refused',
    );
    const found = (await knex('nostr_event_tags')
      .where({ name: 't' })
      .where('value', knex.raw('nostrx_tag_key(?)', ['nostr']))
      .whereIn('event_row_id', [older, newer])
      .orderBy('created_at_nostr', 'desc')
      .pluck('event_row_id')) as string[];
    t.same(found, [newer, older]);
    const keyColumns = (
      await rows<{ attname: string }>(
        knex,
        `SELECT a.attname FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
       WHERE i.indrelid = 'nostr_event_tags'::regclass AND i.indisprimary
       ORDER BY array_position(i.indkey::int2[], a.attnum)`,
      )
    ).map((r) => r.attname);
    t.same(keyColumns, ['name', 'value', 'created_at_nostr', 'event_row_id'], 'the one index on (name, value)');
  });

  await t.test("an event's tag rows go with it, found by their key (migration 0028)", async (t) => {
    const userId = await newUser(knex);
    const tags = [
      ['t', 'nostr'],
      ['e', hex(64), 'wss://relay.example/'],
      ['p', hex(64)],
      ['t', 'nostr'],
    ];
    const event = async (createdAt: number) => {
      const id = await newEvent(knex, userId, { pubkey: hex(64), event_kind: 1, created_at_nostr: createdAt, tags });
      const rowsOf = new Map(tags.map(([name, value]) => [`${name} ${value}`, { name, value }]));
      await knex('nostr_event_tags').insert(
        [...rowsOf.values()].map((r) => ({
          event_row_id: id,
          name: r.name,
          value: knex.raw('nostrx_tag_key(?)', [r.value!]),
          created_at_nostr: createdAt,
          event_kind: 1,
        })),
      );
      return id;
    };
    const gone = await event(300);
    const kept = await event(300);
    const tagRowsOf = async (id: string) => (await knex('nostr_event_tags').where({ event_row_id: id })).length;
    t.equal(await tagRowsOf(gone), 3);
    await knex('nostr_events').where({ id: gone }).delete();
    t.equal(await tagRowsOf(gone), 0, 'deleting the event deletes its tag rows');
    t.equal(await tagRowsOf(kept), 3, "and not another event's with the same tags and second");
    const keys = await rows<{ conname: string }>(
      knex,
      `SELECT conname FROM pg_constraint WHERE conrelid = 'nostr_event_tags'::regclass AND contype = 'f'`,
    );
    t.same(keys, [], 'no foreign key: a tag row is written with its event, and no check per row');
  });

  await t.test('a tag value is stored as bytes, an id or key as its 32 (migration 0030)', async (t) => {
    const userId = await newUser(knex);
    const key = hex(64);
    const asText = 'a'.repeat(32); // its UTF-8 bytes are those of the 64 hex digits '61'.repeat(32)
    const values = [key, key.toUpperCase(), asText, '61'.repeat(32), 'back\\slash \\x41', 'Ünïcödé 🎉', ''];
    const tags = values.map((value, n) => [String.fromCharCode(97 + n), value]);
    const id = await newEvent(knex, userId, { pubkey: hex(64), event_kind: 1, created_at_nostr: 500, tags });
    await knex('nostr_event_tags').insert(
      values.map((value, n) => ({
        event_row_id: id,
        name: String.fromCharCode(97 + n),
        value: knex.raw('nostrx_tag_key(?)', [value]),
        created_at_nostr: 500,
        event_kind: 1,
      })),
    );
    const stored = (await knex('nostr_event_tags')
      .where({ event_row_id: id })
      .orderBy('name')
      .pluck('value')) as Buffer[];
    t.same(
      stored.map((b) => b.toString('hex')),
      values.map((v) => storedTagValue(v).toString('hex')),
      'hex digits as their bytes, text as its UTF-8 bytes, a zero byte after 32 of them',
    );
    t.equal(stored[0]!.length, 32, 'an event id or pubkey takes 32 bytes');
    for (const [n, value] of values.entries()) {
      const found = (await knex('nostr_event_tags')
        .where({ event_row_id: id })
        .where('value', knex.raw('nostrx_tag_key(?)', [value]))
        .pluck('name')) as string[];
      t.same(found, [String.fromCharCode(97 + n)], `${JSON.stringify(value.slice(0, 12))} finds its own row only`);
    }
    await knex('nostr_events').where({ id }).delete();
    t.equal(
      (await knex('nostr_event_tags').where({ event_row_id: id })).length,
      0,
      'the erasing trigger finds them all',
    );
    const [rights] = await rows<{ read: boolean; write: boolean; admin: boolean }>(
      knex,
      `SELECT has_table_privilege('nostrx_app_read', 'nostr_event_tags', 'SELECT') AS read,
         has_table_privilege('nostrx_app_write', 'nostr_event_tags', 'INSERT') AS write,
         has_table_privilege('nostrx_admin', 'nostr_event_tags', 'DELETE') AS admin`,
    );
    t.same(rights, { read: true, write: true, admin: true }, 'the table written anew keeps the roles’ rights');
  });

  await t.test('the tag key tells an id from text as 0030 did, without a bounded regex (migration 0032)', async (t) => {
    const key = hex(64);
    // around every edge of "64 lowercase hex digits": length, case, a trailing newline, multibyte text of 64 bytes
    const values = [
      key,
      key.slice(1),
      `${key}0`,
      key.toUpperCase(),
      `${key.slice(1)}\n`,
      `${key.slice(2)}é`,
      `${key.slice(1)}g`,
      ' '.repeat(64),
      'a'.repeat(32),
      '',
    ];
    const same = await rows<{ value: string; same: boolean }>(
      knex,
      `SELECT v AS value, nostrx_tag_key(v) = CASE
          WHEN v ~ '^[0-9a-f]{64}$' THEN decode(v, 'hex')
          WHEN octet_length(v) = 32 THEN decode(replace(v, '\\', '\\\\'), 'escape') || '\\x00'::bytea
          ELSE decode(replace(v, '\\', '\\\\'), 'escape')
        END AS same
       FROM unnest(CAST(? AS text[])) AS v`,
      [values],
    );
    t.same(
      same.filter((r) => !r.same),
      [],
      "every value gets 0030's key",
    );
    t.equal(same.length, values.length);
    const plan = await rows<{ 'QUERY PLAN': string }>(
      knex,
      `EXPLAIN (VERBOSE, COSTS OFF) SELECT nostrx_tag_key(v) FROM unnest(CAST(? AS text[])) AS v`,
      [values],
    );
    const text = plan.map((r) => r['QUERY PLAN']).join('\n');
    t.match(text, /CASE WHEN/, 'inlined: the plan computes the expression');
    t.notMatch(text, /nostrx_tag_key/, 'with no call of the function');
  });

  await t.test('an event id is stored once, kept unique by a hash index (migration 0029)', async (t) => {
    const userId = await newUser(knex);
    const eventId = hex(64);
    const first = await newEvent(knex, userId, { pubkey: hex(64), event_kind: 1, event_id: eventId });
    await t.rejects(
      newEvent(knex, userId, { pubkey: hex(64), event_kind: 1, event_id: eventId }),
      { code: '23P01' },
      'a second row with the id is refused (an exclusion violation)',
    );
    const again = await rows<{ id: string }>(
      knex,
      `INSERT INTO nostr_events (event_id, user_id, pubkey, event_kind, created_at_nostr, content, tags, sig)
       VALUES (?, ?, ?, 1, 1, '', '[]', decode(?, 'hex')) ON CONFLICT ON CONSTRAINT nostr_events_event_id_excl DO NOTHING
       RETURNING id`,
      [eventId, userId, hex(64), hex(128)],
    );
    t.same(again, [], 'ON CONFLICT ON CONSTRAINT … DO NOTHING takes it as its arbiter');
    t.equal((await knex('nostr_events').where({ event_id: eventId })).length, 1);
    t.equal(((await knex('nostr_events').where({ event_id: eventId }).first('id')) as { id: string }).id, first);
    const methods = await rows<{ amname: string }>(
      knex,
      `SELECT am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
       WHERE i.indrelid = 'nostr_events'::regclass AND a.attname = 'event_id' AND i.indnatts = 1`,
    );
    t.same(methods, [{ amname: 'hash' }], 'the one index on the event id is a hash index');
  });

  await t.test('a stored event comes back exactly as signed', async (t) => {
    const userId = await newUser(knex);
    const tags = [
      ['e', hex(64), 'wss://relay.example/', 'reply'],
      ['t', 'Ünïcödé 🎉'],
      ['p', hex(64)],
      ['empty', ''],
    ];
    const content = 'line 1\nline "2"\t\\ back \u2028 end 🎉';
    const id = await newEvent(knex, userId, {
      pubkey: hex(64),
      event_kind: 1,
      tags,
      content,
      created_at_nostr: '4294967296',
    });
    const row = (await knex('nostr_events').where({ id }).first('tags', 'content', 'created_at_nostr')) as {
      tags: unknown;
      content: string;
      created_at_nostr: string;
    };
    t.same(row.tags, tags, 'tags keep order and every string');
    t.equal(row.content, content, 'content is byte-for-byte the same');
    t.equal(row.created_at_nostr, '4294967296', 'created_at beyond 2038 (and beyond 32 bits) is kept');
    await t.rejects(
      newEvent(knex, userId, { pubkey: hex(64), event_kind: 1, event_id: hex(64).toUpperCase() }),
      { code: '23514' },
      'an uppercase event id is refused',
    );
    await t.rejects(
      knex('users').insert({ nostr_public_key: 'A'.repeat(64) }),
      { code: '23514' },
      'an uppercase user pubkey is refused',
    );
    // the hex checks as migration 0009 writes them: exactly n bytes, none outside 0-9a-f
    const refused: [string, EventInput][] = [
      ['a 63-digit id', { pubkey: hex(64), event_kind: 1, event_id: hex(64).slice(1) }],
      ['an id with a "g"', { pubkey: hex(64), event_kind: 1, event_id: hex(64).slice(1) + 'g' }],
      ['an id ending in a newline', { pubkey: hex(64), event_kind: 1, event_id: hex(63) + '\n' }],
      ['a pubkey of 62 digits and one 2-byte character', { pubkey: hex(62) + 'é', event_kind: 1 }],
      // the signature is its 64 bytes since migration 0027
      ['a signature of 63 bytes', { pubkey: hex(64), event_kind: 1, sig: hex(126) }],
      ['a signature of 65 bytes', { pubkey: hex(64), event_kind: 1, sig: hex(130) }],
    ];
    for (const [what, input] of refused)
      await t.rejects(newEvent(knex, userId, input), { code: '23514' }, `${what} is refused`);
    await t.rejects(
      newEvent(knex, userId, { pubkey: hex(64), event_kind: 1, event_id: hex(66).slice(1) }),
      { code: '22001' },
      'a 65-digit id is too long for its column',
    );
    await t.rejects(
      knex('relay_bans').insert({ kind: 'pubkey', value: hex(64).slice(1) + 'G' }),
      { code: '23514' },
      'a ban of a non-hex value is refused',
    );
  });

  await t.test('the outbox follows its event and its relay', async (t) => {
    const userId = await newUser(knex);
    const eventRow = await newEvent(knex, userId, { pubkey: hex(64), event_kind: 1 });
    const [relay] = (await knex('user_relays')
      .insert({ user_id: userId, relay_url: 'wss://relay.example' })
      .returning('id')) as { id: string }[];
    await knex('relay_publishes').insert({
      event_id: eventRow,
      user_relay_id: relay!.id,
      relay_url: 'wss://relay.example',
    });
    const row = (await knex('relay_publishes')
      .where({ event_id: eventRow })
      .first('status', 'attempts', 'attempted_at', 'attempt_log')) as Record<string, unknown>;
    t.same(row, { status: 'pending', attempts: 0, attempted_at: null, attempt_log: [] }, 'queued, not attempted yet');
    // created_at is copied in SQL: a JS Date would drop its microseconds and make it another key.
    await t.rejects(
      knex.raw(
        `INSERT INTO relay_publishes (event_id, relay_url, created_at) SELECT event_id, relay_url, created_at FROM relay_publishes WHERE event_id = ?`,
        [eventRow],
      ),
      { code: '23505' },
      'one row per event and target',
    );
    await t.rejects(
      knex('relay_publishes')
        .where({ event_id: eventRow })
        .update({ attempted_at: '2026-01-02T00:00:00Z', completed_at: '2026-01-01T00:00:00Z' }),
      { code: '23514' },
      'valid_times: completed before attempted is refused',
    );
    await knex('user_relays').where({ id: relay!.id }).delete();
    const afterRelay = (await knex('relay_publishes')
      .where({ event_id: eventRow })
      .first('user_relay_id', 'relay_url')) as Record<string, unknown>;
    t.same(
      afterRelay,
      { user_relay_id: null, relay_url: 'wss://relay.example' },
      'removing the relay keeps the row and its URL',
    );
    await knex('nostr_events').where({ id: eventRow }).delete();
    t.equal(
      (await knex('relay_publishes').where({ event_id: eventRow })).length,
      0,
      'deleting the event deletes its outbox rows',
    );
  });

  await t.test('the rows written at every event and for every account get time-ordered ids (UUIDv7)', async (t) => {
    const msOf = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    const clockMs = async () =>
      Number(
        (
          await rows<{ ms: string }>(knex, `SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms`)
        )[0]!.ms,
      );
    const before = await clockMs();
    const userId = await newUser(knex);
    const [relayRow] = (await knex('user_relays')
      .insert({ user_id: userId, relay_url: 'wss://relay.example' })
      .returning('id')) as { id: string }[];
    const [quotaRow] = (await knex('user_quotas')
      .insert({ user_id: userId, quota_date: '2026-02-01', posts_limit: 3, resets_at: '2026-02-02T00:00:00Z' })
      .returning('id')) as { id: string }[];
    const first = await newEvent(knex, userId, { pubkey: hex(64), event_kind: 1 });
    const second = await newEvent(knex, userId, { pubkey: hex(64), event_kind: 1 });
    const [outbox] = (await knex('relay_publishes')
      .insert({ event_id: second, relay_url: 'wss://relay.example' })
      .returning('id')) as { id: string }[];
    const [usage] = (await knex('usage_events')
      .insert({ user_id: userId, event_type: 'quota_usage', event_action: 'post_created' })
      .returning('id')) as { id: string }[];
    // a month's partition made after the migration (maintenance makes them ahead) takes the same default
    const later = await ensureMonthlyPartitions(knex, new Date('2031-01-15T00:00:00Z'), 0);
    const [laterUsage] = (await knex('usage_events')
      .insert({ user_id: userId, event_type: 'quota_usage', event_action: 'post_created', occurred_at: '2031-01-15' })
      .returning('id')) as { id: string }[];
    const after = await clockMs();
    for (const [name, id] of [
      ['users', userId],
      ['user_relays', relayRow!.id],
      ['user_quotas', quotaRow!.id],
      ['nostr_events', first],
      ['nostr_events', second],
      ['relay_publishes', outbox!.id],
      ['usage_events', usage!.id],
      ['usage_events (a partition made later)', laterUsage!.id],
    ] as const) {
      t.match(
        id,
        /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
        `${name}: version 7, RFC variant`,
      );
      t.ok(msOf(id) >= before && msOf(id) <= after, `${name}: its first 48 bits are the insert's ms`);
    }
    t.ok(msOf(first) <= msOf(second), 'a later row has a later or equal time');
    t.not(first, second, 'ids of the same millisecond differ (random bits)');
    await knex('nostr_events').whereIn('id', [first, second]).delete();
    for (const part of later) await knex.raw(`DROP TABLE ${part}`);
  });

  await t.test('a key names one account, as a primary or a linked key (migration 0033)', async (t) => {
    const keyOf = async (pubkey: string) =>
      (
        await rows<{ linked: boolean }>(knex, `SELECT linked FROM account_keys WHERE key = decode(?, 'hex')`, [pubkey])
      )[0]?.linked;
    const primary = hex(64);
    const [owner] = (await knex('users').insert({ nostr_public_key: primary }).returning('id')) as { id: string }[];
    t.equal(await keyOf(primary), false, "an account's key is claimed as a primary key");
    const linked = hex(64);
    await knex('user_identities').insert({ user_id: owner!.id, pubkey: linked });
    t.equal(await keyOf(linked), true, 'a linked key as a linked key');

    const skipped = await knex('users').insert({ nostr_public_key: linked }).onConflict('nostr_public_key').ignore();
    t.equal((skipped as unknown as { rowCount: number }).rowCount, 0, 'a users row for a linked key is skipped');
    const again = (await knex('users')
      .insert({ nostr_public_key: primary })
      .onConflict('nostr_public_key')
      .merge(['timezone'])
      .returning('id')) as { id: string }[];
    t.same(again, [{ id: owner!.id }], "a primary key's own ON CONFLICT clause still meets its account");
    for (const pubkey of [primary, linked]) {
      await t.rejects(
        knex('user_identities').insert({ user_id: owner!.id, pubkey }),
        { code: '23505' },
        `linking a key already claimed (${pubkey === primary ? 'primary' : 'linked'}) is a unique violation`,
      );
    }

    const moved = hex(64);
    await knex('user_identities').where({ pubkey: linked }).update({ pubkey: moved });
    t.same([await keyOf(linked), await keyOf(moved)], [undefined, true], 'a changed key moves its claim');
    const renamed = hex(64);
    await knex('users').where({ id: owner!.id }).update({ nostr_public_key: renamed });
    t.same([await keyOf(primary), await keyOf(renamed)], [undefined, false], "so does an account's");
    await knex('users').where({ id: owner!.id }).delete();
    t.same([await keyOf(renamed), await keyOf(moved)], [undefined, undefined], 'removing the account frees both keys');
    await knex('users').insert({ nostr_public_key: moved });
    t.equal(await keyOf(moved), false, 'a freed key can name an account again');
    await knex('users').where({ nostr_public_key: moved }).delete();
  });

  await t.test("usage rows follow their account without a foreign key's lock (migration 0034)", async (t) => {
    const userId = await newUser(knex);
    const usage = () =>
      knex('usage_events').insert({ user_id: userId, event_type: 'quota_usage', event_action: 'post_charged' });
    await usage();
    await usage();
    await knex.transaction(async (trx) => {
      await trx('usage_events').insert({ user_id: userId, event_type: 'quota_usage', event_action: 'post_charged' });
      const locked = await rows<{ n: number }>(
        trx,
        `SELECT count(*)::int AS n FROM users WHERE id = ? AND xmax = CAST(txid_current() AS text)::xid`,
        [userId],
      );
      t.same(locked, [{ n: 0 }], "writing a usage row leaves the user's row unlocked");
    });
    const count = async () => Number((await knex('usage_events').where({ user_id: userId }).count({ n: '*' }))[0]!.n);
    t.equal(await count(), 3);
    await knex('users').where({ id: userId }).delete();
    t.equal(await count(), 0, "deleting the account deletes its usage rows, as the key's cascade did");
  });

  await t.test("events follow their account without a foreign key's lock (migration 0036)", async (t) => {
    const userId = await newUser(knex);
    const ev = buildEvent(newKey().sk, { tags: [['t', 'without-a-key']] });
    await knex.transaction(async (trx) => {
      await saveEvent(trx, ev, { userId, dTag: null, expiresAt: undefined });
      const locked = await rows<{ n: number }>(
        trx,
        `SELECT count(*)::int AS n FROM users WHERE id = ? AND xmax = CAST(txid_current() AS text)::xid`,
        [userId],
      );
      t.same(locked, [{ n: 0 }], "storing an event leaves its author's row unlocked");
    });
    const stored = async () => ({
      events: Number((await knex('nostr_events').where({ user_id: userId }).count({ n: '*' }))[0]!.n),
      tags: Number((await knex('nostr_event_tags').where({ name: 't' }).count({ n: '*' }))[0]!.n),
    });
    const before = await stored();
    t.equal(before.events, 1);
    t.ok(before.tags >= 1);
    await knex('users').where({ id: userId }).delete();
    t.same(
      await stored(),
      { events: 0, tags: before.tags - 1 },
      'deleting the account deletes its events and their tags',
    );
  });

  await t.test("outbox rows follow their event and relay without a foreign key's lock (migration 0037)", async (t) => {
    const url = 'wss://outbox.example';
    const owner = await userWithRelay(knex, url);
    const queued = await knex.transaction(async (trx) => {
      const q = await storeQueued(trx, owner, url);
      const locked = await rows<{ n: number }>(
        trx,
        `SELECT (SELECT count(*) FROM nostr_events WHERE id = ? AND xmax = CAST(txid_current() AS text)::xid)
              + (SELECT count(*) FROM user_relays WHERE id = ? AND xmax = CAST(txid_current() AS text)::xid) AS n`,
        [q.rowId, owner.relayId],
      );
      t.same(locked, [{ n: 0 }], 'queuing a publish locks neither its event nor its relay row');
      return q;
    });
    const outbox = () => knex('relay_publishes').where({ relay_url: url }).select('user_relay_id');
    t.same(await outbox(), [{ user_relay_id: owner.relayId }]);
    await knex('user_relays').where({ id: owner.relayId }).delete();
    t.same(await outbox(), [{ user_relay_id: null }], "removing the relay keeps its rows, without the relay's id");
    await knex('nostr_events').where({ event_id: queued.eventId }).delete();
    t.same(await outbox(), [], 'deleting the event deletes its outbox rows');
  });

  await t.test("a user's daily totals are updated on their row's own page (migration 0035)", async (t) => {
    const users = await upsertUsersByPubkeys(
      knex,
      Array.from({ length: 200 }, () => hex(64)),
    );
    const deltas = [...users.values()].map((u) => ({
      userId: u.id,
      date: '2026-03-01',
      totalPosts: 1,
      successfulPosts: 1,
      failedPosts: 0,
      twitterPosts: 1,
      xComPosts: 0,
    }));
    const pages = async () =>
      new Map(
        (
          await rows<{ user_id: string; page: number }>(
            knex,
            `SELECT user_id, (ctid::text::point)[0] AS page FROM daily_usage_stats WHERE stat_date = '2026-03-01'`,
          )
        ).map((r) => [r.user_id, r.page]),
      );
    await addDailyStats(knex, deltas);
    const before = await pages();
    t.equal(before.size, 200);
    await addDailyStats(knex, deltas);
    const after = await pages();
    const moved = [...before].filter(([user, page]) => after.get(user) !== page).length;
    t.equal(moved, 0, "every row's new version stayed on its page (an update that can be heap-only)");
    const totals = await rows<{ n: number }>(
      knex,
      `SELECT count(*)::int AS n FROM daily_usage_stats WHERE stat_date = '2026-03-01' AND total_posts = 2`,
    );
    t.same(totals, [{ n: 200 }]);
  });

  await t.test('payments.archived exists for the retention rule', async (t) => {
    const userId = await newUser(knex);
    await knex('payments').insert({ user_id: userId, amount: '4.99', provider_data_encrypted: Buffer.from([1, 2, 3]) });
    await knex.raw(`UPDATE payments SET archived = true WHERE created_at < CURRENT_DATE - INTERVAL '7 years'`);
    const row = (await knex('payments').where({ user_id: userId }).first('archived', 'provider_data_encrypted')) as {
      archived: boolean;
      provider_data_encrypted: Buffer;
    };
    t.equal(row.archived, false, 'a recent payment is not archived');
    t.same([...row.provider_data_encrypted], [1, 2, 3], 'encrypted provider data round-trips');
    await t.rejects(
      knex('payments').insert({ user_id: userId, amount: '-1.00' }),
      { code: '23514' },
      'negative amounts are refused',
    );
  });

  await t.test('RLS on user_quotas scopes the app roles and leaves the owner alone', async (t) => {
    const alice = await newUser(knex);
    const bob = await newUser(knex);
    for (const user of [alice, bob]) {
      await knex('user_quotas').insert({
        user_id: user,
        quota_date: '2026-02-01',
        posts_limit: 3,
        resets_at: '2026-02-02T00:00:00Z',
      });
    }
    const roles = await rows<{ rolname: string }>(
      knex,
      `SELECT rolname FROM pg_roles WHERE rolname LIKE 'nostrx\\_%' ORDER BY rolname`,
    );
    t.same(
      roles.map((r) => r.rolname),
      ['nostrx_admin', 'nostrx_app_read', 'nostrx_app_write'],
    );

    await knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL ROLE nostrx_app_write');
      t.equal(
        (await trx('user_quotas').select('user_id')).length,
        0,
        'without app.current_user_id an app role sees nothing',
      );
      await trx.raw(`SELECT set_config('app.current_user_id', ?, true)`, [alice]);
      const seen = await trx('user_quotas').distinct('user_id');
      t.same(seen, [{ user_id: alice }], 'with it, only that user’s rows');
      await t.rejects(
        trx.transaction((sp) =>
          sp('user_quotas').insert({
            user_id: bob,
            quota_date: '2026-02-02',
            posts_limit: 3,
            resets_at: '2026-02-03T00:00:00Z',
          }),
        ),
        { code: '42501' },
        'and it cannot write another user’s row',
      );
    });

    // The application connects as the owner of the tables. Prove that with an owner that is not a superuser
    // (superusers bypass RLS anyway); everything here is rolled back, the role included.
    const owner = `nostrx_t_owner_${hex(8)}`;
    const trx = await knex.transaction();
    try {
      await trx.raw(`CREATE ROLE ${owner} NOLOGIN`);
      await trx.raw(`ALTER TABLE user_quotas OWNER TO ${owner}`);
      await trx.raw(`SET LOCAL ROLE ${owner}`);
      const visible = await trx('user_quotas').whereIn('user_id', [alice, bob]).select('user_id');
      t.equal(visible.length, 2, 'the owner sees every row without app.current_user_id');
      await trx('user_quotas').where({ user_id: bob }).increment('posts_used', 1);
      t.pass('and writes any of them');
    } finally {
      await trx.rollback();
    }
  });
}

t.test('PostgreSQL 15', async (t) => {
  const db = await createTestDatabase(t);
  const ledger = await db.knex('knex_migrations').orderBy('id').pluck('name');
  t.same(ledger, migrationNames, 'every migration is applied, recorded without its extension');
  t.same(await migrateLatest(db.knex), [], 'a second run applies nothing');
  await checkSchema(t, db.knex);
});

t.test('PostgreSQL 15: 0033 claims the keys of the accounts and links made before it', async (t) => {
  const url = await createTestDatabaseUrl(t);
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolMax: 2 });
  t.teardown(() => db.close());
  const source = { migrationSource: migrationSource() };
  const before = migrationNames.indexOf('0033_account_keys');
  for (let i = 0; i < before; i++) await db.knex.migrate.up(source);
  const primaries = [hex(64), hex(64)];
  const ids = (await db
    .knex('users')
    .insert(primaries.map((k) => ({ nostr_public_key: k })))
    .returning('id')) as {
    id: string;
  }[];
  const linked = hex(64);
  await db.knex('user_identities').insert({ user_id: ids[0]!.id, pubkey: linked });

  t.same(await migrateLatest(db.knex), migrationNames.slice(before), 'the rest apply');
  const claimed = await rows<{ key: string; linked: boolean }>(
    db.knex,
    `SELECT encode(key, 'hex') AS key, linked FROM account_keys ORDER BY key`,
  );
  t.same(
    claimed,
    [...primaries.map((key) => ({ key, linked: false })), { key: linked, linked: true }].sort((a, b) =>
      a.key < b.key ? -1 : 1,
    ),
    'every key, with its kind',
  );
  const old = await rows<{ n: number }>(
    db.knex,
    `SELECT count(*)::int AS n FROM pg_proc
     WHERE proname IN ('nostrx_users_skip_linked_key', 'nostrx_identities_refuse_primary_key')`,
  );
  t.same(old, [{ n: 0 }], "0019's lock-taking functions are gone");

  await db.knex.raw('TRUNCATE user_identities');
  t.same(
    await rows<{ linked: boolean }>(db.knex, 'SELECT DISTINCT linked FROM account_keys'),
    [{ linked: false }],
    'emptying the links frees their keys only',
  );
  await db.knex.raw('TRUNCATE users CASCADE');
  t.same(await rows(db.knex, 'SELECT * FROM account_keys'), [], 'and emptying the accounts, theirs');
});

t.test('emptying users empties the events, their tag rows and outbox with them (migration 0036)', (t) => {
  onBothDatabases(t, async (t, knex) => {
    const userId = await newUser(knex);
    const ev = buildEvent(newKey().sk, { tags: [['t', 'truncated']] });
    await knex.transaction((trx) => saveEvent(trx, ev, { userId, dTag: null, expiresAt: undefined }));
    const count = async (table: string) =>
      (await rows<{ n: number }>(knex, `SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
    t.equal(await count('nostr_events'), 1);
    t.ok((await count('nostr_event_tags')) > 0);
    await knex.raw('TRUNCATE users CASCADE');
    for (const table of ['nostr_events', 'nostr_event_tags', 'relay_publishes'])
      t.equal(await count(table), 0, `${table} is empty`);
  });
  t.end();
});

t.test('emptying the relays or the events keeps or empties the outbox as its keys did (migration 0037)', (t) => {
  onBothDatabases(t, async (t, knex) => {
    const url = 'wss://emptied.example';
    const owner = await userWithRelay(knex, url);
    await knex.transaction((trx) => storeQueued(trx, owner, url));
    const count = async (table: string) =>
      (await rows<{ n: number }>(knex, `SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
    await knex.raw('TRUNCATE user_relays');
    t.same(
      await knex('relay_publishes').select('user_relay_id'),
      [{ user_relay_id: null }],
      'emptying the relays keeps the outbox',
    );
    await knex.raw('TRUNCATE nostr_events');
    for (const table of ['relay_publishes', 'nostr_event_tags']) t.equal(await count(table), 0, `${table} is empty`);
  });
  t.end();
});

t.test('PostgreSQL 15: two databases of one cluster migrate at the same time', async (t) => {
  const urls = await Promise.all([createTestDatabaseUrl(t), createTestDatabaseUrl(t)]);
  const dbs = await Promise.all(urls.map((url) => openDatabase({ databaseUrl: url, dataDir: '', poolMax: 2 })));
  t.teardown(() => Promise.all(dbs.map((db) => db.close())));
  const applied = await Promise.all(dbs.map((db) => migrateLatest(db.knex)));
  t.same(applied, [migrationNames, migrationNames]);
});

t.test('npm run migrate (src/migrate-cli.ts) migrates and reports one JSON line', async (t) => {
  const url = await createTestDatabaseUrl(t);
  const run = async (): Promise<unknown> => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/migrate-cli.ts'], {
      cwd: path.resolve(migrationsDir, '..'),
      env: { ...process.env, DATABASE_URL: url },
    });
    const lines = stdout.trim().split('\n');
    t.equal(lines.length, 1, 'one line');
    return JSON.parse(lines[0]!);
  };
  // Migration 0004 creates this month and the next; the command then the one after (it keeps two months ahead).
  const ahead = (['usage_events', 'relay_publishes'] as const).map((table) => monthPartition(table, new Date(), 2));
  t.same(
    await run(),
    { database: 'pg', migrations: migrationNames, partitions: ahead },
    'first run applies everything',
  );
  t.same(await run(), { database: 'pg', migrations: [], partitions: [] }, 'second run applies nothing');
});

t.test('PGlite', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nostrx-migrations-'));
  const db = await openDatabase({ databaseUrl: '', dataDir, poolMax: 1 });
  t.teardown(async () => {
    const remove = () => fs.rmSync(dataDir, { recursive: true, force: true });
    if (await closePglite(db)) remove();
    else process.once('exit', remove); // the lock is still held and refreshed; removing its dir now would throw
  });
  t.same(await migrateLatest(db.knex), migrationNames, 'the same migrations apply');
  t.same(await migrateLatest(db.knex), [], 'a second run applies nothing');
  await checkSchema(t, db.knex);

  await t.test('partition maintenance works on PGlite too', async (t) => {
    const created = await ensureMonthlyPartitions(db.knex, new Date('2021-05-20T00:00:00Z'), 1);
    t.same(created, [
      'usage_events_y2021m05',
      'usage_events_y2021m06',
      'relay_publishes_y2021m05',
      'relay_publishes_y2021m06',
    ]);
    t.same(await dropPartitionsBefore(db.knex, 'usage_events', new Date('2021-06-01T00:00:00Z')), [
      'usage_events_y2021m05',
    ]);
  });
});

// KNOWN DEFECT in src/store/db.ts (not this file's to change): Database.close() for PGlite calls pglite.close()
// after knex.destroy() has already closed it (knex-pglite's destroyRawConnection), so it rejects with
// "PGlite is closed" and never releases the data-dir lock (proper-lockfile keeps refreshing it until exit).
// Tolerate exactly that error until db.ts is fixed; any other error still fails the test. Returns whether the
// close completed (and so released the lock).
async function closePglite(db: Database): Promise<boolean> {
  try {
    await db.close();
    return true;
  } catch (err) {
    if (err instanceof Error && err.message === 'PGlite is closed') return false;
    throw err;
  }
}
