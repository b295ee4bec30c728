// The enqueue stage for a group commit (AdmissionStages.enqueueForwardingBatch): the same rules as
// core/outbox.ts for one event — custom write relays when the plan allows them and the user has some, else the
// operator's defaults; NIP-70 events stored but not forwarded — with each step done for the whole batch at once.
// Relay lists (kind 10002) are replaceable, so they never reach a batch; they take the one-event path.
import type { Config } from '../config.js';
import * as nip70 from '../nips/nip70.js';
import { parseRelayUrl } from '../nips/relay-url.js';
import { activeWriteRelaysOf, customRelaysAllowedOf, enqueuePublishesMany, ensureDefaultRelaysOf, markNotForwardedMany } from '../store/outbox-batch.js';
import type { RelayTarget } from '../store/user-relays.js';
import type { AdmissionStages } from './admission.js';

export function createOutboxBatchStage(deps: { config: Pick<Config, 'upstreamRelays'> }): Required<Pick<AdmissionStages, 'enqueueForwardingBatch'>> {
  const defaults = [...new Set(deps.config.upstreamRelays.map((u) => parseRelayUrl(u)).flatMap((p) => (p.ok ? [p.value.url] : [])))];
  return {
    async enqueueForwardingBatch(trx, items) {
      const forwarded = items.filter((i) => !nip70.isProtected(i.ev));
      await markNotForwardedMany(
        trx,
        items.filter((i) => nip70.isProtected(i.ev)).map((i) => i.rowId),
        'the event is protected (NIP-70), only its author may publish it to other relays',
      );
      const users = [...new Set(forwarded.map((i) => i.user.id))];
      // read on the transaction's own connection: a second pool connection here could wait on this one
      const custom = await customRelaysAllowedOf(trx, users);
      const own = await activeWriteRelaysOf(trx, [...custom]);
      const needDefaults = users.filter((u) => (own.get(u)?.length ?? 0) === 0);
      const fallback = await ensureDefaultRelaysOf(trx, needDefaults, defaults);
      const targetsOf = (u: string): RelayTarget[] => ((own.get(u)?.length ?? 0) > 0 ? own.get(u)! : (fallback.get(u) ?? []));
      const none = forwarded.filter((i) => targetsOf(i.user.id).length === 0).map((i) => i.rowId);
      await markNotForwardedMany(trx, none, 'no upstream relays are configured');
      await enqueuePublishesMany(
        trx,
        forwarded.flatMap((i) => targetsOf(i.user.id).map((t) => ({ eventRowId: i.rowId, userRelayId: t.userRelayId, url: t.url }))),
      );
    },
  };
}
