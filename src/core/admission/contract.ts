// The admission contract: what the relay and the API hand to admission, what it answers, the phases other
// capabilities plug into it (quota, forwarding, moderation) and the listeners told after it. Types only, so
// that a capability implementing a phase depends on this file and never on the pipeline itself.
import type { Knex } from 'knex';
import type { NostrEvent, VerifiedEvent } from '../../nips/nip01.js';
import type { Rejection } from '../../nips/result.js';
import type { Forwarding } from '../../store/forwarding-plan.js';
import type { LedgerPeriod } from '../../store/quotas.js';
import type { RelayTarget } from '../../store/user-relays.js';
import type { UserRecord } from '../../store/users.js';

export interface SourceMeta {
  readonly platform?: string;
  readonly tweetId?: string;
  readonly tweetUrl?: string;
  readonly tweetText?: string;
  readonly username?: string;
}

export interface AdmissionContext {
  readonly via: 'relay' | 'api';
  /** Pubkeys the caller proved it holds: NIP-42 AUTH on the relay, the NIP-98 signer on the API. */
  readonly authed: ReadonlySet<string>;
  readonly ip?: string | undefined;
  readonly source?: SourceMeta | undefined;
}

/** Facts about the quota a rejection or acceptance was measured against (for the API's JSON and the OK text). */
export interface QuotaFacts {
  readonly plan: string;
  readonly period: 'daily' | 'monthly';
  readonly limit: number;
  readonly used: number;
  readonly resetsAt: string;
}

export type Admission =
  /** `queued`: outbox rows were written with the event, so the forwarder has work. */
  | { readonly status: 'accepted'; readonly eventId: string; readonly message: string; readonly queued?: boolean }
  | { readonly status: 'duplicate'; readonly eventId: string; readonly message: string }
  | {
      readonly status: 'rejected';
      readonly eventId: string;
      readonly rejection: Rejection;
      readonly quota?: QuotaFacts | undefined;
    };

/** Hooks the quota and forwarding stages plug into the admission transaction (see core/quota/tier-quota.ts, core/forwarding/enqueue.ts). */
export interface AdmissionStages {
  /**
   * Before verification, for a known author: answers from memory whether they are already at the limit. May wait
   * while the author's earlier posts are being admitted (core/quota/post-gate.ts); onSettled ends what it let through.
   */
  precheckQuota?(user: UserRecord, ev: NostrEvent): Promise<{ rejection: Rejection; quota: QuotaFacts } | undefined>;
  /**
   * After verification, before the transaction: the fast shared check (Redis) that holds one post of the quota
   * until onSettled; a rejection ends the path. Only signed events get here, so a forged event cannot hold
   * anyone's quota.
   */
  reserveQuota?(user: UserRecord, ev: VerifiedEvent): Promise<{ rejection: Rejection; quota: QuotaFacts } | undefined>;
  /** Inside the transaction: charge the event; a rejection rolls the transaction back. */
  chargeQuota?(
    trx: Knex.Transaction,
    user: UserRecord,
    ev: VerifiedEvent,
  ): Promise<{ rejection: Rejection; quota: QuotaFacts } | undefined>;
  /**
   * Inside a group-commit transaction: charge many stored events at once (aligned answers: a rejection takes that
   * event back out of the batch). Without it, chargeQuota is called per event.
   */
  chargeQuotaBatch?(
    trx: Knex.Transaction,
    items: readonly { user: UserRecord; ev: VerifiedEvent }[],
  ): Promise<({ rejection: Rejection; quota: QuotaFacts } | undefined)[]>;
  /**
   * For a group-commit batch, before it is written: the ledger periods each event is counted in, with their limits
   * (none for a kind that is not a post). The batch is then written as one statement that charges them too,
   * without a transaction around it, all or nothing: when a period has no room for the batch's posts, the batch
   * is written again in a transaction where chargeQuotaBatch decides post by post. Undefined: always that way.
   */
  batchCharges?(items: readonly { user: UserRecord; ev: VerifiedEvent }[]): Promise<(readonly LedgerPeriod[])[]>;
  /** After such a one-statement write: the ledger's counts after it (`${userId}:${type}`), for the stored events. */
  chargedInBatch?(items: readonly { user: UserRecord; ev: VerifiedEvent }[], totals: ReadonlyMap<string, number>): void;
  /**
   * For a group-commit batch (in its transaction, if it has one), before the events are stored: where each goes
   * (aligned answers), so that the rows and their outbox rows are written together. Without it, events of a batch are not forwarded.
   */
  planForwarding?(db: Knex, items: readonly { user: UserRecord; ev: VerifiedEvent }[]): Promise<Forwarding[]>;
  /**
   * After a group commit: the relay rows (`user_relays`) it made for new authors' `newTargets`, by user id, now
   * committed, so that their next events need not read them.
   */
  committedTargets?(byUser: ReadonlyMap<string, readonly RelayTarget[]>): void;
  /** Inside the transaction: write the forwarding outbox rows for a stored event; true when it wrote any. */
  enqueueForwarding?(trx: Knex.Transaction, user: UserRecord, ev: VerifiedEvent, rowId: string): Promise<boolean>;
  /**
   * After the commit (or its failure), for every event that reached precheckQuota: told the outcome; cannot
   * change the answer. After verification `ev` is the same VerifiedEvent object reserveQuota and chargeQuota saw.
   * No outcome: the try was withdrawn, to be admitted again under the author's existing account (a post presumed a
   * new author's whose account existed, AuthorLookup.isNew): what it held goes back, and it is not recorded.
   */
  onSettled?(
    user: UserRecord,
    ev: NostrEvent,
    outcome: Admission | undefined,
    committed: boolean,
    ctx: AdmissionContext,
  ): void;
  /**
   * For an event signed by a key linked to the author's account rather than its primary key (ev.pubkey differs from
   * user.pubkey, core/accounts/identities.ts): a rejection when the account may not post with that key now. Asked
   * with the account's other checks, before the signature is verified for a known author.
   */
  checkLinkedKey?(user: UserRecord, ev: NostrEvent): Promise<Rejection | undefined>;
  /** NIP-86 bans: a rejection when the pubkey or event is banned. */
  checkBans?(ev: NostrEvent): Rejection | undefined;
}

export type Admit = (raw: unknown, ctx: AdmissionContext) => Promise<Admission>;

/** The author's account, as admission needs it (core/accounts): cached, and created on a first signed event. */
export interface AuthorLookup {
  /** The account of a known pubkey, or undefined; never creates one (the signature is not checked yet). */
  find(pubkey: string): Promise<UserRecord | undefined>;
  /**
   * True when no account has this key as far as this process knows without I/O: find() is skipped and the post is
   * stored as a first post, which the storing statement refuses (`author-exists`) if the account exists after all.
   */
  isNew(pubkey: string): boolean;
  /** The account a presumed first post found taken, looked up (undefined only if it is gone again). */
  existing(pubkey: string): Promise<UserRecord | undefined>;
  /** The account of a pubkey whose event is signed, created on the free plan when it is new. */
  forPubkey(pubkey: string): Promise<UserRecord>;
  /**
   * The account of a signed event's author that find() did not know, without I/O: the saved one if it was saved
   * meanwhile, else an unsaved one on the free plan (UserRecord.unsaved) that the statement storing the event
   * saves. Every event of one new author in this process gets the same one until it is saved.
   */
  forNewAuthor(pubkey: string): UserRecord;
  /** Told a new author's account as it was saved with their event (its id is another process's if it saved one first). */
  saved(user: UserRecord): void;
}

/**
 * Told after the commit of every stored event, and of every accepted ephemeral event, in commit order: fan-out to
 * subscribers and the like. A listener cannot change the answer.
 */
type PublishedListener = (ev: VerifiedEvent) => void;

/** Told the outcome of every admission and how long it took: metrics, waking the forwarder. */
export type SettledListener = (outcome: Admission, ctx: AdmissionContext, seconds: number) => void;

export interface AdmissionListeners {
  readonly published?: readonly PublishedListener[];
  readonly settled?: readonly SettledListener[];
}
