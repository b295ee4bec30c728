// user_relays: the upstream relays a user's events are forwarded to, with per-user forwarding stats.
//
// Three sources (column `source`):
// - 'api'     added by the user through POST /v1/relays (addUserRelay);
// - 'nip65'   the write relays of the user's latest NIP-65 list (kind 10002) published through this relay
//             (replaceNip65Relays, called in the admission transaction);
// - 'default' the operator's UPSTREAM_RELAYS, materialised per user (is_default = true) the first time one of the
//             user's events is forwarded to them (ensureDefaultRelays), so every relay_publishes row has a
//             user_relay_id and the per-user stats land in one place whatever the plan.
// "Custom" relays are the 'api' and 'nip65' ones; a plan with custom_relays_allowed forwards to the active custom
// relays that have `write`, and to the defaults when there are none.
//
// URLs are stored in their normalised form (nips/relay-url.ts parseRelayUrl). Functions here take URLs that were
// already validated (core/forwarding/relay-targets.ts validateRelayUrl); they do no DNS and no SSRF check themselves.
import type { Knex } from 'knex';

export type RelaySource = 'api' | 'nip65' | 'default';

export interface UserRelay {
  readonly id: string;
  readonly userId: string;
  readonly url: string;
  readonly name: string | null;
  readonly source: RelaySource;
  readonly isDefault: boolean;
  readonly isActive: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly addedAt: Date;
  readonly updatedAt: Date;
  readonly stats: {
    readonly totalPublishes: number;
    readonly successfulPublishes: number;
    readonly failedPublishes: number;
    /** Percent of finished publishes that the relay took, 0–100. */
    readonly successRate: number;
    /** Mean time from sending an event to the relay's OK, over the publishes it took. */
    readonly avgResponseTimeMs: number | null;
    readonly lastConnectedAt: Date | null;
    readonly lastPublishSuccess: Date | null;
    readonly lastPublishFailure: Date | null;
    /** Transient failures (timeouts, connection errors, error:/rate-limited:) since the last answer. */
    readonly consecutiveFailures: number;
    /** Set when consecutiveFailures reached FORWARD_CIRCUIT_FAILURES: the forwarder paused this relay until then. */
    readonly pausedUntil: Date | null;
    /** Events the relay acknowledged (OK true) that a later NIP-77 reconciliation found it no longer holds. */
    readonly acknowledgedMissing: number;
    readonly lastReconciledAt: Date | null;
  };
  /** The relay's NIP-11 document, as last fetched by the forwarder. */
  readonly relayInfo: Record<string, unknown> | null;
  readonly supportedNips: number[] | null;
}

interface UserRelayRow {
  id: string;
  user_id: string;
  relay_url: string;
  relay_name: string | null;
  source: RelaySource;
  is_default: boolean;
  is_active: boolean;
  read: boolean;
  write: boolean;
  added_at: Date;
  updated_at: Date;
  total_publishes: number;
  successful_publishes: number;
  failed_publishes: number;
  success_rate: string | number;
  avg_response_time_ms: number | null;
  last_connected_at: Date | null;
  last_publish_success: Date | null;
  last_publish_failure: Date | null;
  consecutive_failures: number;
  paused_until: Date | null;
  acknowledged_missing: number;
  last_reconciled_at: Date | null;
  relay_info: Record<string, unknown> | string | null;
  supported_nips: number[] | null;
}

function toUserRelay(r: UserRelayRow): UserRelay {
  return {
    id: r.id,
    userId: r.user_id,
    url: r.relay_url,
    name: r.relay_name,
    source: r.source,
    isDefault: r.is_default,
    isActive: r.is_active,
    read: r.read,
    write: r.write,
    addedAt: r.added_at,
    updatedAt: r.updated_at,
    stats: {
      totalPublishes: r.total_publishes,
      successfulPublishes: r.successful_publishes,
      failedPublishes: r.failed_publishes,
      successRate: Number(r.success_rate),
      avgResponseTimeMs: r.avg_response_time_ms,
      lastConnectedAt: r.last_connected_at,
      lastPublishSuccess: r.last_publish_success,
      lastPublishFailure: r.last_publish_failure,
      consecutiveFailures: r.consecutive_failures,
      pausedUntil: r.paused_until,
      acknowledgedMissing: r.acknowledged_missing,
      lastReconciledAt: r.last_reconciled_at,
    },
    relayInfo: typeof r.relay_info === 'string' ? (JSON.parse(r.relay_info) as Record<string, unknown>) : r.relay_info,
    supportedNips: r.supported_nips,
  };
}

export const customSources: readonly RelaySource[] = ['api', 'nip65'];
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The user's relays, oldest first. By default only their own (api, nip65), active or not; with
 * `includeDefaults` also their rows for the operator's defaults (made when they first post, with their stats).
 */
export async function listUserRelays(
  db: Knex,
  userId: string,
  opts: { includeDefaults?: boolean } = {},
): Promise<UserRelay[]> {
  const q = db('user_relays').where({ user_id: userId });
  if (!opts.includeDefaults) q.whereIn('source', customSources);
  const rows = (await q.orderBy([{ column: 'added_at' }, { column: 'relay_url' }]).select('*')) as UserRelayRow[];
  return rows.map(toUserRelay);
}

/** One of the user's relays by id (undefined when it is not theirs, or the id is not a UUID). */
export async function getUserRelay(db: Knex, userId: string, relayId: string): Promise<UserRelay | undefined> {
  if (!uuidPattern.test(relayId)) return undefined;
  const row = (await db('user_relays').where({ id: relayId, user_id: userId }).first('*')) as UserRelayRow | undefined;
  return row ? toUserRelay(row) : undefined;
}

/** Serialises changes to one user's relay set (cap checks) without blocking inserts that reference the user. */
async function lockUser(trx: Knex.Transaction, userId: string): Promise<void> {
  await trx.raw('SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE', [userId]);
}

async function activeCustomCount(trx: Knex, userId: string): Promise<number> {
  const rows = (await trx('user_relays')
    .where({ user_id: userId, is_active: true })
    .whereIn('source', customSources)
    .count<{ n: string | number }[]>({ n: '*' })) as { n: string | number }[];
  return Number(rows[0]?.n ?? 0);
}

export type AddRelayOutcome =
  | { readonly status: 'added'; readonly relay: UserRelay }
  /** The user already has this relay, active, as one of their own: nothing changed. */
  | { readonly status: 'exists'; readonly relay: UserRelay }
  /** The user already has `limit` active relays of their own. */
  | { readonly status: 'limit'; readonly limit: number };

/**
 * Adds a relay of the user's own (source 'api'), for POST /v1/relays. `url` must be validated and normalised
 * (validateRelayUrl). An inactive row or an operator-default row for the same URL becomes an active 'api' row
 * (its stats are kept). Refused with 'limit' when the user already has `max` active relays of their own.
 */
export async function addUserRelay(
  db: Knex,
  userId: string,
  input: { url: string; name?: string | undefined; read?: boolean | undefined; write?: boolean | undefined },
  opts: { max: number },
): Promise<AddRelayOutcome> {
  return db.transaction(async (trx) => {
    await lockUser(trx, userId);
    const existing = (await trx('user_relays').where({ user_id: userId, relay_url: input.url }).first('*')) as
      UserRelayRow | undefined;
    if (existing && existing.is_active && customSources.includes(existing.source))
      return { status: 'exists', relay: toUserRelay(existing) };
    if ((await activeCustomCount(trx, userId)) >= opts.max) return { status: 'limit', limit: opts.max };
    const values = {
      relay_name: input.name ?? existing?.relay_name ?? null,
      read: input.read ?? true,
      write: input.write ?? true,
      source: 'api',
      is_default: false,
      is_active: true,
    };
    const rows = existing
      ? ((await trx('user_relays')
          .where({ id: existing.id })
          .update({ ...values, updated_at: trx.fn.now() })
          .returning('*')) as UserRelayRow[])
      : ((await trx('user_relays')
          .insert({ ...values, user_id: userId, relay_url: input.url })
          .returning('*')) as UserRelayRow[]);
    const row = rows[0];
    if (!row) throw new Error('user_relays write returned no row');
    return { status: 'added', relay: toUserRelay(row) };
  });
}

export type UpdateRelayOutcome =
  | { readonly status: 'updated'; readonly relay: UserRelay }
  | { readonly status: 'not_found' }
  /** Activating it would exceed the user's `limit` active relays of their own. */
  | { readonly status: 'limit'; readonly limit: number };

/**
 * Changes the name, the read/write markers or the active flag of one of the user's own relays (PATCH
 * /v1/relays/:id). Operator-default rows are not the user's to change ('not_found').
 */
export async function updateUserRelay(
  db: Knex,
  userId: string,
  relayId: string,
  patch: {
    name?: string | null | undefined;
    isActive?: boolean | undefined;
    read?: boolean | undefined;
    write?: boolean | undefined;
  },
  opts: { max: number },
): Promise<UpdateRelayOutcome> {
  if (!uuidPattern.test(relayId)) return { status: 'not_found' };
  return db.transaction(async (trx) => {
    await lockUser(trx, userId);
    const row = (await trx('user_relays')
      .where({ id: relayId, user_id: userId })
      .whereIn('source', customSources)
      .first('*')) as UserRelayRow | undefined;
    if (!row) return { status: 'not_found' };
    if (patch.isActive === true && !row.is_active && (await activeCustomCount(trx, userId)) >= opts.max)
      return { status: 'limit', limit: opts.max };
    const values: Record<string, unknown> = { updated_at: trx.fn.now() };
    if (patch.name !== undefined) values.relay_name = patch.name;
    if (patch.isActive !== undefined) values.is_active = patch.isActive;
    if (patch.read !== undefined) values.read = patch.read;
    if (patch.write !== undefined) values.write = patch.write;
    const [updated] = (await trx('user_relays').where({ id: relayId }).update(values).returning('*')) as UserRelayRow[];
    if (!updated) return { status: 'not_found' };
    return { status: 'updated', relay: toUserRelay(updated) };
  });
}

/**
 * Removes one of the user's own relays (DELETE /v1/relays/:id); false when there is no such relay. Its outbox rows
 * keep their relay_url (user_relay_id becomes NULL), so unfinished publishes are still delivered and the history
 * stays readable. Operator-default rows cannot be deleted (they would be recreated by the next event).
 */
export async function deleteUserRelay(db: Knex, userId: string, relayId: string): Promise<boolean> {
  if (!uuidPattern.test(relayId)) return false;
  const n = await db('user_relays').where({ id: relayId, user_id: userId }).whereIn('source', customSources).delete();
  return n > 0;
}

export interface RelayTarget {
  readonly userRelayId: string;
  readonly url: string;
}

/** A default relay's row for one user; `created` when this call inserted it (not committed yet in a transaction). */
export interface DefaultTarget extends RelayTarget {
  readonly created: boolean;
}

/**
 * Each user's rows for the default relays, created where missing (source 'default'), in one insert and one
 * read. A user's own row for the same URL is used as it is. Rows are never deleted but with their user, so a
 * row that was not created by this call may be remembered.
 */
export async function ensureDefaultRelaysOf(
  db: Knex,
  userIds: readonly string[],
  urls: readonly string[],
): Promise<Map<string, DefaultTarget[]>> {
  const out = new Map<string, DefaultTarget[]>(userIds.map((u) => [u, []]));
  if (userIds.length === 0 || urls.length === 0) return out;
  const { rows: inserted } = (await db.raw(
    `INSERT INTO user_relays (user_id, relay_url, is_default, source, read, write)
     SELECT u, url, true, 'default', false, true FROM unnest(CAST(? AS uuid[])) AS u CROSS JOIN unnest(CAST(? AS text[])) AS url
     ON CONFLICT (user_id, relay_url) DO NOTHING
     RETURNING id`,
    [[...userIds], [...urls]],
  )) as { rows: { id: string }[] };
  const created = new Set(inserted.map((r) => r.id));
  const rows = (await db('user_relays')
    .whereIn('user_id', [...userIds])
    .whereIn('relay_url', [...urls])
    .select('id', 'user_id', 'relay_url')) as {
    id: string;
    user_id: string;
    relay_url: string;
  }[];
  const byKey = new Map(rows.map((r) => [`${r.user_id} ${r.relay_url}`, r.id]));
  for (const u of userIds) {
    for (const url of new Set(urls)) {
      const id = byKey.get(`${u} ${url}`);
      if (id) out.get(u)?.push({ userRelayId: id, url, created: created.has(id) });
    }
  }
  return out;
}

/** One user's rows for the default relays (see ensureDefaultRelaysOf). */
export async function ensureDefaultRelays(db: Knex, userId: string, urls: readonly string[]): Promise<DefaultTarget[]> {
  return (await ensureDefaultRelaysOf(db, [userId], urls)).get(userId) ?? [];
}

export interface RelayListChange {
  /** Relays that became the user's nip65 relays (new rows, or rows that were inactive or operator defaults). */
  readonly added: string[];
  /** nip65 relays that were already active and stay so. */
  readonly kept: string[];
  /** nip65 relays that left the list and were deactivated. */
  readonly deactivated: string[];
  /** Relays of the list not taken because the user would exceed `max` active relays of their own. */
  readonly skipped: string[];
}

/**
 * Makes `entries` (the write relays of the user's newest NIP-65 list, validated and normalised, in list order)
 * the user's 'nip65' relays: rows of the list are activated or created, earlier nip65 rows not in the list are
 * deactivated (stats kept), and 'api' rows are left alone. Runs in the caller's transaction.
 */
export async function replaceNip65Relays(
  trx: Knex.Transaction,
  userId: string,
  entries: readonly { url: string; read: boolean }[],
  max: number,
): Promise<RelayListChange> {
  await lockUser(trx, userId);
  const rows = (await trx('user_relays')
    .where({ user_id: userId })
    .select('id', 'relay_url', 'source', 'is_active')) as {
    id: string;
    relay_url: string;
    source: RelaySource;
    is_active: boolean;
  }[];
  const byUrl = new Map(rows.map((r) => [r.relay_url, r]));
  const listed = new Set(entries.map((e) => e.url));
  const deactivated = rows
    .filter((r) => r.source === 'nip65' && r.is_active && !listed.has(r.relay_url))
    .map((r) => r.relay_url);
  if (deactivated.length > 0) {
    await trx('user_relays')
      .where({ user_id: userId, source: 'nip65' })
      .whereIn('relay_url', deactivated)
      .update({ is_active: false, updated_at: trx.fn.now() });
  }
  let active = rows.filter(
    (r) => r.is_active && customSources.includes(r.source) && !deactivated.includes(r.relay_url),
  ).length;
  const added: string[] = [];
  const kept: string[] = [];
  const skipped: string[] = [];
  for (const e of entries) {
    const row = byUrl.get(e.url);
    if (row && row.source === 'api') continue; // managed through the API
    if (row && row.source === 'nip65' && row.is_active) {
      await trx('user_relays').where({ id: row.id }).update({ read: e.read, write: true, updated_at: trx.fn.now() });
      kept.push(e.url);
      continue;
    }
    if (active >= max) {
      skipped.push(e.url);
      continue;
    }
    const values = { source: 'nip65', is_default: false, is_active: true, read: e.read, write: true };
    if (row)
      await trx('user_relays')
        .where({ id: row.id })
        .update({ ...values, updated_at: trx.fn.now() });
    else await trx('user_relays').insert({ ...values, user_id: userId, relay_url: e.url });
    active += 1;
    added.push(e.url);
  }
  return { added, kept, deactivated, skipped };
}
