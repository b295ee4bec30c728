// The enqueue stage of admission (AdmissionStages.enqueueForwarding): inside the transaction that stores an event,
// decide its target relays and write one relay_publishes row per target, so an event is never stored without its
// forwarding work, and never queued without being stored.
//
// Targets: the user's active custom write relays when their plan has custom_relays_allowed (and they have some),
// else the operator's UPSTREAM_RELAYS. A NIP-65 relay list (kind 10002) of a user whose plan allows custom relays
// first replaces their nip65 relays, so the list itself already goes to the relays it names. NIP-70 protected
// events are stored but not forwarded, and the event row says so.
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { VerifiedEvent } from '../nips/nip01.js';
import * as nip70 from '../nips/nip70.js';
import { parseRelayUrl } from '../nips/relay-url.js';
import { enqueuePublishes, markNotForwarded } from '../store/outbox.js';
import { activeWriteRelays, ensureDefaultRelays, planAllowsCustomRelays, type RelayTarget } from '../store/user-relays.js';
import type { UserRecord } from '../store/users.js';
import type { AdmissionStages } from './admission.js';
import { applyRelayList, type Resolver } from './relay-targets.js';

export const RELAY_LIST_KIND = 10002;

export interface OutboxStageDeps {
  readonly config: Pick<Config, 'upstreamRelays' | 'allowPrivateRelays' | 'maxCustomRelays'>;
  readonly log: Logger;
  /** Whether the user's plan allows custom relays, read on the transaction; default planAllowsCustomRelays. */
  readonly customRelaysAllowed?: (trx: Knex.Transaction, userId: string) => Promise<boolean>;
  /** DNS for the SSRF check of NIP-65 relays (tests); default dns.lookup. */
  readonly resolve?: Resolver;
}

export type OutboxStage = Required<Pick<AdmissionStages, 'enqueueForwarding'>>;

export function createOutboxStage(deps: OutboxStageDeps): OutboxStage {
  const log = deps.log.child({ mod: 'outbox' });
  const defaults = [...new Set(deps.config.upstreamRelays.map((u) => parseRelayUrl(u)).flatMap((p) => (p.ok ? [p.value.url] : [])))];
  const customAllowed = deps.customRelaysAllowed ?? planAllowsCustomRelays;

  async function targetsFor(trx: Knex.Transaction, user: UserRecord, ev: VerifiedEvent): Promise<RelayTarget[]> {
    const custom = await customAllowed(trx, user.id);
    if (custom && ev.kind === RELAY_LIST_KIND) {
      const change = await applyRelayList(trx, user.id, ev, {
        allowPrivate: deps.config.allowPrivateRelays,
        max: deps.config.maxCustomRelays,
        timeoutMs: 2000,
        ...(deps.resolve ? { resolve: deps.resolve } : {}),
      });
      log.info({ user: user.id, eventId: ev.id, ...change }, 'relay list applied');
    }
    const own = custom ? await activeWriteRelays(trx, user.id) : [];
    if (own.length > 0) return own;
    return ensureDefaultRelays(trx, user.id, defaults);
  }

  return {
    async enqueueForwarding(trx, user, ev, rowId) {
      if (nip70.isProtected(ev)) {
        await markNotForwarded(trx, rowId, 'the event is protected (NIP-70), only its author may publish it to other relays');
        return;
      }
      const targets = await targetsFor(trx, user, ev);
      if (targets.length === 0) {
        await markNotForwarded(trx, rowId, 'no upstream relays are configured');
        return;
      }
      await enqueuePublishes(trx, rowId, targets);
    },
  };
}
