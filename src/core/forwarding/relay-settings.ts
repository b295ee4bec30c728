// The user's own relays through the API: only on plans with custom relays, URLs through the SSRF guard of
// core/forwarding/relay-targets.ts, at most MAX_CUSTOM_RELAYS active. Only ever the caller's own rows.
import type { Knex } from 'knex';
import { fail, failWith, ok, type Result } from '../../nips/result.js';
import { deleteUserRelay, listUserRelays, updateUserRelay, type UserRelay } from '../../store/user-relays.js';
import { addOwnRelay, type AddressPolicy } from './relay-targets.js';

export type { UserRelay };

export interface RelaySettingsDeps {
  readonly db: Knex;
  readonly policy: AddressPolicy;
  readonly maxCustomRelays: number;
}

interface RelayInput {
  readonly url: string;
  readonly name?: string | undefined;
  readonly read?: boolean | undefined;
  readonly write?: boolean | undefined;
}

interface RelayPatch {
  readonly name?: string | null | undefined;
  readonly isActive?: boolean | undefined;
  readonly read?: boolean | undefined;
  readonly write?: boolean | undefined;
}

type AddOutcome = { readonly status: 'added' | 'exists'; readonly relay: UserRelay };

export interface RelaySettings {
  list(userId: string): Promise<UserRelay[]>;
  /** `invalid:` (URL, SSRF), `restricted:` (cap), `error:` (DNS failure, try again). */
  add(userId: string, input: RelayInput): Promise<Result<AddOutcome>>;
  /** undefined when the user has no such relay; `restricted:` when reactivating it would pass the cap. */
  update(userId: string, relayId: string, patch: RelayPatch): Promise<Result<UserRelay | undefined>>;
  remove(userId: string, relayId: string): Promise<boolean>;
}

export function createRelaySettings(deps: RelaySettingsDeps): RelaySettings {
  const max = deps.maxCustomRelays;
  return {
    list: (userId) => listUserRelays(deps.db, userId),
    async add(userId, input) {
      // The plan was checked by the caller (to name the plan that would allow it); here only the URL and the cap.
      const r = await addOwnRelay(deps.db, userId, input, { ...deps.policy, max, customRelaysAllowed: true });
      if (!r.ok) return failWith(r.rejection);
      if (r.value.status === 'limit')
        return fail('restricted', `you already have ${r.value.limit} relays of your own, the most allowed`);
      return ok({ status: r.value.status, relay: r.value.relay });
    },
    async update(userId, relayId, patch) {
      const r = await updateUserRelay(deps.db, userId, relayId, patch, { max });
      if (r.status === 'not_found') return ok(undefined);
      if (r.status === 'limit')
        return fail('restricted', `you already have ${r.limit} active relays of your own, the most allowed`);
      return ok(r.relay);
    },
    remove: (userId, relayId) => deleteUserRelay(deps.db, userId, relayId),
  };
}
