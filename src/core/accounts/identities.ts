// Several Nostr keys on one account (plans with multiple_identities). The account keeps its primary key (the users
// row); more keys are linked with proof that the caller holds them (a NIP-98 token signed by the new key for the same
// request, checked by core/accounts/http-auth.ts `proof`). A linked key resolves to the account everywhere a pubkey is
// looked up (store/users.ts), so its events are the account's: one quota (keyed by the account), its history, stats
// and export. A key belongs to one account; at most MAX_IDENTITIES keys per account, the primary one included.
//
// Who may change the keys: linking, and unlinking another key, take the primary key (a linked key, perhaps shared
// with a project's team, cannot add keys or take the owner's away); any linked key may unlink itself. Every change is
// audited, and after its commit the cached accounts of the key are dropped in every process (cache-invalidation.ts):
// an unlinked key's next event or request is a stranger's. Its sessions are revoked in the unlinking transaction.
//
// A plan without multiple_identities keeps the links, but posts signed by a linked key are refused with
// `restricted:` (linkedKeyCheck, an admission stage) until the account is on a plan with the feature again.
import type { Knex } from 'knex';
import { rejection, type Rejection } from '../../nips/result.js';
import type { NostrEvent } from '../../nips/nip01.js';
import { linkIdentity, listIdentities, unlinkIdentity, type IdentityRecord } from '../../store/identities.js';
import type { UserRecord } from '../../store/users.js';
import { checkFeature, refusal, type Plans } from '../quota/index.js';
import type { CacheInvalidation } from './cache-invalidation.js';
import type { Caller } from './http-auth.js';

export interface Identity extends IdentityRecord {
  /** false for a linked key while the plan does not include multiple identities. */
  readonly canPost: boolean;
}

export interface IdentitiesDeps {
  readonly db: Knex;
  readonly plans: Plans;
  readonly invalidation: CacheInvalidation;
  /** Most keys on one account, its primary key included (MAX_IDENTITIES). */
  readonly maxIdentities: number;
  /** Seconds since the epoch. */
  readonly now: () => number;
}

export type IdentityRefusal =
  /** 403: only the primary key may do this. */
  | { readonly code: 'primary_key_required'; readonly message: string }
  /** 403: the plan does not include the feature; `upgrade` names one that does. */
  | { readonly code: 'plan_required'; readonly message: string; readonly upgrade: string | undefined }
  /** 403: MAX_IDENTITIES reached. */
  | { readonly code: 'identity_limit_reached'; readonly message: string }
  /** 409: the key is another account's (its own, or linked to one). */
  | { readonly code: 'identity_taken'; readonly message: string }
  /** 409: the primary key cannot be unlinked. */
  | { readonly code: 'identity_is_primary'; readonly message: string }
  /** 404: not a key linked to this account. */
  | { readonly code: 'identity_not_found'; readonly message: string }
  /** 404: the account is gone. */
  | { readonly code: 'user_not_found'; readonly message: string };

type LinkResult =
  | { readonly ok: true; readonly created: boolean; readonly identity: Identity }
  | { readonly ok: false; readonly refusal: IdentityRefusal };
type UnlinkResult = { readonly ok: true } | { readonly ok: false; readonly refusal: IdentityRefusal };

export interface Identities {
  /** The account's keys, primary first, with whether each may post under the current plan. */
  list(userId: string): Promise<Identity[]>;
  /** Links `pubkey` (already proven by the caller) to the caller's account. */
  link(caller: Caller, pubkey: string, label: string | null): Promise<LinkResult>;
  unlink(caller: Caller, pubkey: string): Promise<UnlinkResult>;
}

const primaryOnly = (what: string): IdentityRefusal => ({
  code: 'primary_key_required',
  message: `only the account's primary key may ${what}; sign this request with it`,
});

export function createIdentities(deps: IdentitiesDeps): Identities {
  const allowsLinkedKeys = async (userId: string) => (await deps.plans.effectivePlan(userId)).multipleIdentities;

  return {
    async list(userId) {
      const [keys, allowed] = await Promise.all([listIdentities(deps.db, userId), allowsLinkedKeys(userId)]);
      return keys.map((k) => ({ ...k, canPost: k.primary || allowed }));
    },

    async link(caller, pubkey, label) {
      if (caller.pubkey !== caller.user.pubkey) return { ok: false, refusal: primaryOnly('link keys') };
      const feature = await checkFeature(deps.plans, caller.user.id, 'multipleIdentities');
      if (!feature.allowed) {
        return {
          ok: false,
          refusal: {
            code: 'plan_required',
            message: refusal(feature, 'multipleIdentities'),
            upgrade: feature.upgrade?.code,
          },
        };
      }
      const r = await linkIdentity(deps.db, caller.user.id, pubkey, {
        label,
        maxKeys: deps.maxIdentities,
        actor: 'user',
      });
      switch (r.status) {
        case 'no_user':
          return { ok: false, refusal: { code: 'user_not_found', message: 'your account no longer exists' } };
        case 'taken':
          return {
            ok: false,
            refusal: {
              code: 'identity_taken',
              message:
                r.by === 'own_account'
                  ? 'this key has an account of its own; to link it here, first erase that account (DELETE /v1/me signed by the key)'
                  : 'this key is linked to another account; it must be unlinked there first',
            },
          };
        case 'limit_reached':
          return {
            ok: false,
            refusal: {
              code: 'identity_limit_reached',
              message: `an account has at most ${deps.maxIdentities} keys, its primary key included`,
            },
          };
        case 'already_linked':
          return { ok: true, created: false, identity: { ...r.identity, canPost: true } };
        case 'linked':
          deps.invalidation.account(pubkey, caller.user.id);
          return { ok: true, created: true, identity: { ...r.identity, canPost: true } };
      }
    },

    async unlink(caller, pubkey) {
      if (pubkey === caller.user.pubkey) {
        return {
          ok: false,
          refusal: {
            code: 'identity_is_primary',
            message: "the account's primary key cannot be unlinked; erase the account instead (DELETE /v1/me)",
          },
        };
      }
      if (caller.pubkey !== caller.user.pubkey && caller.pubkey !== pubkey)
        return { ok: false, refusal: primaryOnly('unlink a key other than the one you signed with') };
      const removed = await unlinkIdentity(deps.db, caller.user.id, pubkey, {
        actor: 'user',
        now: new Date(deps.now() * 1000),
      });
      if (!removed)
        return {
          ok: false,
          refusal: { code: 'identity_not_found', message: 'this key is not linked to your account' },
        };
      deps.invalidation.account(pubkey, caller.user.id);
      return { ok: true };
    },
  };
}

/**
 * The admission stage for events signed by a key linked to the author's account (ev.pubkey ≠ user.pubkey): posts
 * (the kinds the quota counts) are refused with `restricted:` while the account's plan lacks multiple identities.
 * Other kinds (profile, deletions …) pass, so the key can still tidy up what it published.
 */
export function linkedKeyCheck(deps: {
  plans: Plans;
  isPost: (kind: number) => boolean;
}): (user: UserRecord, ev: NostrEvent) => Promise<Rejection | undefined> {
  return async (user, ev) => {
    if (!deps.isPost(ev.kind)) return undefined;
    const feature = await checkFeature(deps.plans, user.id, 'multipleIdentities');
    if (feature.allowed) return undefined;
    const upgrade = feature.upgrade ? `, or move to the ${feature.upgrade.code} plan` : '';
    return rejection(
      'restricted',
      `this key is linked to an account whose plan ${feature.plan.code} does not include multiple identities: post with the account's primary key${upgrade}`,
    );
  };
}
