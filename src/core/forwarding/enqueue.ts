// The enqueue stage of admission: decide where events go, so that the statement storing them writes one
// relay_publishes row per target in the same transaction: an event is never stored without its forwarding work,
// and never queued without being stored. `planForwarding` decides for many events at once (one statement at most,
// for the default relays' rows of users not seen before); the group-commit writer stores the plan with the rows in
// one statement (store/event-batch.ts), and the one-event path (replaceable events, deletions) right after
// storing its event (store/forwarding-plan.ts enqueuePlanned).
//
// Targets: the user's active custom write relays when their plan has custom_relays_allowed and they have some
// (read by the storing statement itself), else the operator's UPSTREAM_RELAYS. A NIP-65 relay list (kind 10002)
// of a user whose plan allows custom relays first replaces their nip65 relays, so the list itself already goes to
// the relays it names (the list of the account's primary key only, not of a key linked to it). NIP-70 protected events are stored but not forwarded, and the event row says so.
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import type { VerifiedEvent } from '../../nips/nip01.js';
import * as nip70 from '../../nips/nip70.js';
import { parseRelayUrl } from '../../nips/relay-url.js';
import { NO_UPSTREAM, enqueuePlanned, notForwarded, type Forwarding } from '../../store/forwarding-plan.js';
import { ensureDefaultRelaysOf, type RelayTarget } from '../../store/user-relays.js';
import type { Plans } from '../quota/index.js';
import type { UserRecord } from '../../store/users.js';
import type { AdmissionStages } from '../admission/index.js';
import { applyRelayList, type Resolver } from './relay-targets.js';

export const RELAY_LIST_KIND = 10002;

export interface OutboxStageDeps {
  readonly config: Pick<Config, 'upstreamRelays' | 'allowPrivateRelays' | 'maxCustomRelays'>;
  readonly log: Logger;
  /**
   * The effective plan decides whether a user's own relays count. Cached: admission looked it up for the quota a
   * moment before, so the transaction does not wait on a second pool connection for it.
   */
  readonly plans: Pick<Plans, 'effectivePlan'>;
  /** DNS for the SSRF check of NIP-65 relays (tests); default dns.lookup. */
  readonly resolve?: Resolver;
}

export type OutboxStage = Required<Pick<AdmissionStages, 'enqueueForwarding' | 'planForwarding' | 'committedTargets'>>;

type Item = { readonly user: UserRecord; readonly ev: VerifiedEvent };

export function createOutboxStage(deps: OutboxStageDeps): OutboxStage {
  const log = deps.log.child({ mod: 'outbox' });
  const defaults = [
    ...new Set(deps.config.upstreamRelays.map((u) => parseRelayUrl(u)).flatMap((p) => (p.ok ? [p.value.url] : []))),
  ];

  // A user's rows for the operator's default relays, once they are known to be committed: every batch of their
  // events needs them, and they never change (rows go only with their user; the URLs only with a restart).
  const knownDefaults = new LRUCache<string, RelayTarget[]>({ max: 100_000 });

  async function defaultTargetsOf(db: Knex, userIds: readonly string[]): Promise<Map<string, RelayTarget[]>> {
    const out = new Map<string, RelayTarget[]>();
    const missing: string[] = [];
    for (const u of userIds) {
      const known = knownDefaults.get(u);
      if (known) out.set(u, known);
      else missing.push(u);
    }
    const found = await ensureDefaultRelaysOf(db, missing, defaults);
    for (const [u, targets] of found) {
      const plain = targets.map((t) => ({ userRelayId: t.userRelayId, url: t.url }));
      out.set(u, plain);
      // a row inserted just now may yet be rolled back with the caller's transaction: remembered next time
      if (targets.length === defaults.length && !targets.some((t) => t.created)) knownDefaults.set(u, plain);
    }
    return out;
  }

  async function customRelaysAllowed(userIds: readonly string[]): Promise<string[]> {
    const plans = await Promise.all(userIds.map((u) => deps.plans.effectivePlan(u)));
    return userIds.filter((_, k) => plans[k]!.customRelaysAllowed);
  }

  const PROTECTED = notForwarded('the event is protected (NIP-70), only its author may publish it to other relays');

  /**
   * Where each of these events goes (aligned with `items`). The default relays' rows are made for every user, also
   * those whose own relays will be used: whether they have any is only read by the statement that stores the event.
   */
  async function planForwarding(db: Knex, items: readonly Item[]): Promise<Forwarding[]> {
    const forwarded = items.filter((i) => !nip70.isProtected(i.ev));
    const users = [...new Set(forwarded.map((i) => i.user.id))];
    const custom = new Set(await customRelaysAllowed(users));
    // in a transaction, on its own connection: a second pool connection here could wait on this one. A new
    // author's rows are made by the statement that saves their account (event-batch.ts), so none are read here.
    const saved = [...new Set(forwarded.filter((i) => !i.user.unsaved).map((i) => i.user.id))];
    const fallback = await defaultTargetsOf(db, saved);
    return items.map((i): Forwarding => {
      if (nip70.isProtected(i.ev)) return PROTECTED;
      const plan = { ...NO_UPSTREAM, ownRelaysFirst: custom.has(i.user.id) };
      return i.user.unsaved
        ? { ...plan, targets: [], newTargets: defaults }
        : { ...plan, targets: fallback.get(i.user.id) ?? [] };
    });
  }

  return {
    async enqueueForwarding(trx, user, ev, rowId) {
      // Only the list of the account's primary key: a key linked to the account (core/accounts/identities.ts) has
      // relays of its own in its list, which must not replace the account's.
      const ownList = ev.kind === RELAY_LIST_KIND && ev.pubkey === user.pubkey;
      if (ownList && !nip70.isProtected(ev) && (await customRelaysAllowed([user.id])).length > 0) {
        const change = await applyRelayList(trx, user.id, ev, {
          allowPrivate: deps.config.allowPrivateRelays,
          max: deps.config.maxCustomRelays,
          timeoutMs: 2000,
          ...(deps.resolve ? { resolve: deps.resolve } : {}),
        });
        log.info({ user: user.id, eventId: ev.id, ...change }, 'relay list applied');
      }
      const [plan = NO_UPSTREAM] = await planForwarding(trx, [{ user, ev }]);
      return enqueuePlanned(trx, { rowId, eventId: ev.id, userId: user.id }, plan);
    },
    planForwarding,
    // a new author's rows, made by the statement that saved the account and committed with it: their second event
    // reads nothing either
    committedTargets(byUser) {
      for (const [u, targets] of byUser) if (targets.length === defaults.length) knownDefaults.set(u, [...targets]);
    },
  };
}
