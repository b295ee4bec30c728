// Admission: the one path every published event takes, from the relay and from the API alike. It reads as its
// phases, top to bottom: check (shape, limits, auth, bans, a known author's account and quota, all before the
// signature) → verify → reserve (the author's quota) → write (group commit: the event, its outbox rows and the
// ledger in one commit) → publish (the `published` listeners: fan-out) → settle (the quota's settlement, then the
// `settled` listeners: metrics, the forwarder's wake-up). Each phase may end the path with a rejection. The
// phases other capabilities provide and the listeners are declared in contract.ts and wired in app.ts.
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import * as kinds from '../../nips/kinds.js';
import * as nip01 from '../../nips/nip01.js';
import * as nip09 from '../../nips/nip09.js';
import * as nip40 from '../../nips/nip40.js';
import * as nip70 from '../../nips/nip70.js';
import { rejection, type Rejection } from '../../nips/result.js';
import type { NostrEvent, VerifiedEvent } from '../../nips/nip01.js';
import { deleteReferenced, saveEvent, type EventRowExtras } from '../../store/events.js';
import { saveUsers, type UserRecord } from '../../store/users.js';
import type {
  Admission,
  AdmissionContext,
  AdmissionListeners,
  AdmissionStages,
  Admit,
  AuthorLookup,
  QuotaFacts,
} from './contract.js';
import { createWriter, type Saved, type WriteJob } from './group-commit.js';
import { retryingConflicts } from './conflict-retry.js';
import { verifyHere, type Verify } from './verifier-pool.js';

export interface AdmissionDeps {
  readonly db: Knex;
  readonly config: Config;
  readonly log: Logger;
  readonly accounts: AuthorLookup;
  readonly stages?: AdmissionStages;
  readonly listeners?: AdmissionListeners;
  readonly onBatch?: (size: number, seconds: number) => void;
  /** Id and signature check; the verifier threads' (core/admission/verifier-pool.ts), else on this thread. */
  readonly verify?: Verify;
  /** Seconds since the epoch; injectable for tests. */
  readonly now?: () => number;
}

export interface AdmissionPipeline {
  readonly admit: Admit;
  /**
   * Forgets the ids a deletion names, wherever it was stored (this process or another, through the fan-out): an
   * event deleted by its author is no longer "had", so sent again it is refused as the store refuses it.
   */
  forgetDeleted(ev: NostrEvent): void;
}

class QuotaRollback extends Error {
  constructor(readonly result: { rejection: Rejection; quota: QuotaFacts }) {
    super(result.rejection.message);
  }
}

const UNIQUE_VIOLATION = '23505';

/** The id a client gave its event, for the OK of an event that could not be parsed (or not answered in time). */
export function idOf(raw: unknown): string {
  if (typeof raw === 'object' && raw !== null && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if (typeof id === 'string' && id.length <= 64) return id;
  }
  return '';
}

export function createAdmission(deps: AdmissionDeps): AdmissionPipeline {
  const { config, log, stages = {}, verify = verifyHere } = deps;
  const published = deps.listeners?.published ?? [];
  const settled = deps.listeners?.settled ?? [];
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  // Ids this process stored or saw stored: clients retry, and a retry should cost no query and no verification.
  // An id stored by another process is not looked up before verifying: that query would cost every new event a
  // round trip to save the rare duplicate a verification; the insert tells duplicates apart anyway.
  const known = new LRUCache<string, true>({ max: 100_000 });
  const limits: nip01.EventLimits = {
    maxContentLength: config.maxContentLength,
    maxEventTags: config.maxEventTags,
    maxTagElementLength: config.maxTagElementLength,
    createdAtPastSeconds: config.createdAtPastSeconds,
    createdAtFutureSeconds: config.createdAtFutureSeconds,
  };

  const rejected = (eventId: string, r: Rejection, quota?: QuotaFacts): Admission => ({
    status: 'rejected',
    eventId,
    rejection: r,
    quota,
  });
  const duplicate = (eventId: string): Admission => ({
    status: 'duplicate',
    eventId,
    message: 'duplicate: already have this event',
  });

  function checkAuth(ev: NostrEvent, ctx: AdmissionContext): Rejection | undefined {
    if (config.authRequiredForWrite && ctx.via === 'relay') {
      if (ctx.authed.size === 0)
        return rejection('auth-required', 'this relay only accepts events after AUTH (NIP-42)');
      if (!ctx.authed.has(ev.pubkey))
        return rejection('restricted', 'events must be signed by the authenticated pubkey');
    }
    if (nip70.isProtected(ev) && !ctx.authed.has(ev.pubkey)) {
      return rejection('auth-required', 'this event is protected (NIP-70): authenticate as its author to publish it');
    }
    return undefined;
  }

  function checkAccount(user: UserRecord): Rejection | undefined {
    if (user.status === 'suspended' || user.status === 'deleted')
      return rejection('blocked', `this account is ${user.status}`);
    return undefined;
  }

  /** For an event signed by a key linked to the account, not its primary key: whether that key may post now. */
  async function checkLinkedKey(user: UserRecord, ev: NostrEvent): Promise<Rejection | undefined> {
    return stages.checkLinkedKey?.(user, ev);
  }

  function rowExtras(user: UserRecord, ev: VerifiedEvent, ctx: AdmissionContext): EventRowExtras {
    return {
      userId: user.id,
      dTag: kinds.replaceKey(ev),
      expiresAt: nip40.expiration(ev),
      sourcePlatform: ctx.source?.platform,
      tweet: ctx.source && {
        id: ctx.source.tweetId,
        url: ctx.source.tweetUrl,
        text: ctx.source.tweetText,
        username: ctx.source.username,
      },
    };
  }

  async function store(user: UserRecord, ev: VerifiedEvent, ctx: AdmissionContext): Promise<Saved> {
    return storeJob({ user, ev, extras: rowExtras(user, ev, ctx) });
  }

  /** One event in a transaction of its own, written again if the transaction is rolled back for a conflict. */
  async function storeJob(job: WriteJob): Promise<Saved> {
    return retryingConflicts(log, 'event write', () => storeOnce(job));
  }

  async function storeOnce({ user, ev, extras }: WriteJob): Promise<Saved> {
    return deps.db.transaction(async (trx) => {
      // a new author's event stored on its own (a replaceable kind, a deletion): the account first, in its
      // transaction; one that existed already (or a linked key's) is the caller's to look up (store/event-batch.ts)
      const author = user.unsaved ? (await saveUsers(trx, [user])).get(user.pubkey) : user;
      if (author?.id !== user.id) return { status: 'author-exists' as const };
      const saved = {
        ...(await saveEvent(trx, ev, { ...extras, userId: author.id })),
        ...(user.unsaved ? { author } : {}),
      };
      if (saved.status !== 'inserted') return saved;
      if (ev.kind === kinds.EventDeletion) await deleteReferenced(trx, [ev]);
      const over = await stages.chargeQuota?.(trx, author, ev);
      if (over) throw new QuotaRollback(over);
      const queued = (await stages.enqueueForwarding?.(trx, author, ev, saved.rowId)) ?? false;
      return { ...saved, queued };
    });
  }

  const writer = createWriter({
    db: deps.db,
    log,
    stages,
    ...(deps.onBatch ? { onBatch: deps.onBatch } : {}),
    single: (job) =>
      storeJob(job).catch((err: unknown) => {
        if (err instanceof QuotaRollback) return { status: 'refused' as const, refusal: err.result };
        throw err;
      }),
  });

  /** Regular events go through the group-commit writer; replaceable, addressable and deletions one by one. */
  async function save(user: UserRecord, ev: VerifiedEvent, ctx: AdmissionContext): Promise<Saved> {
    if (kinds.kindClass(ev.kind) !== 'regular' || ev.kind === kinds.EventDeletion) return storeWithRetry(user, ev, ctx);
    const r = await writer.submit({ user, ev, extras: rowExtras(user, ev, ctx) });
    if (r.status === 'refused') throw new QuotaRollback(r.refusal);
    return r;
  }

  async function storeWithRetry(user: UserRecord, ev: VerifiedEvent, ctx: AdmissionContext): Promise<Saved> {
    try {
      return await store(user, ev, ctx);
    } catch (err) {
      // Two first versions of one replaceable event raced on the unique index: the loser re-runs and now
      // sees the winner, so the NIP-01 newest-wins rule decides.
      if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
      return store(user, ev, ctx);
    }
  }

  function outcomeAdmission(ev: NostrEvent, saved: Exclude<Saved, { status: 'author-exists' }>): Admission {
    switch (saved.status) {
      case 'inserted':
        return { status: 'accepted', eventId: ev.id, message: '', queued: saved.queued };
      case 'duplicate':
        return duplicate(ev.id);
      case 'superseded':
        return {
          status: 'duplicate',
          eventId: ev.id,
          message: 'duplicate: a newer version of this event is already stored',
        };
      case 'deleted':
        return rejected(ev.id, rejection('blocked', 'this event was deleted by its author (NIP-09)'));
    }
  }

  /** Check: everything decided before the signature is verified; cheap checks first. */
  function check(raw: unknown, ctx: AdmissionContext): NostrEvent | Admission {
    const parsed = nip01.parseEvent(raw);
    if (!parsed.ok) return rejected(idOf(raw), parsed.rejection);
    const ev = parsed.value;
    const limited = nip01.checkLimits(ev, limits, now());
    if (limited) return rejected(ev.id, limited);
    const unauthorised = checkAuth(ev, ctx);
    if (unauthorised) return rejected(ev.id, unauthorised);
    if (nip40.isExpired(ev, now())) return rejected(ev.id, rejection('invalid', 'this event has expired (NIP-40)'));
    const banned = stages.checkBans?.(ev);
    if (banned) return rejected(ev.id, banned);
    if (kinds.kindClass(ev.kind) !== 'ephemeral' && known.has(ev.id)) return duplicate(ev.id);
    return ev;
  }

  /** Publish: told after the commit, in order; a failing listener is logged and changes nothing. */
  function publish(ev: VerifiedEvent): void {
    for (const listener of published) {
      try {
        listener(ev);
      } catch (err) {
        log.error({ err, eventId: ev.id }, 'a published-event listener failed');
      }
    }
  }

  /**
   * A found author's account, before anything is stored: its status, a linked key's right to post, and (for stored
   * kinds) whether its quota is already spent, from memory. An answer ends the path.
   */
  async function checkFound(
    user: UserRecord,
    ev: NostrEvent,
    ephemeral: boolean,
    ctx: AdmissionContext,
  ): Promise<Admission | undefined> {
    // The common case, an event by the account's primary key, awaits nothing but the quota's check here.
    const refused = checkAccount(user) ?? (ev.pubkey === user.pubkey ? undefined : await checkLinkedKey(user, ev));
    if (refused) return rejected(ev.id, refused);
    const early = ephemeral ? undefined : await stages.precheckQuota?.(user, ev);
    if (early) return settle(user, ev, rejected(ev.id, early.rejection, early.quota), false, ctx);
    return undefined;
  }

  async function run(raw: unknown, ctx: AdmissionContext): Promise<Admission> {
    const ev = check(raw, ctx);
    if ('status' in ev) return ev;
    const ephemeral = kinds.kindClass(ev.kind) === 'ephemeral';

    // Nothing is created before the signature is checked: a known author is looked up (cached), so that a
    // suspended one, or one already at the limit, is answered from memory, without I/O and without verifying. A
    // key no account can have (AuthorLookup.isNew) is not looked up: the statement that stores the post checks it.
    let user = deps.accounts.isNew(ev.pubkey) ? undefined : await deps.accounts.find(ev.pubkey);
    if (user) {
      const answered = await checkFound(user, ev, ephemeral, ctx);
      if (answered) return answered;
    }

    const verified = await verify(ev);
    if (!verified.ok)
      return user
        ? settle(user, ev, rejected(ev.id, verified.rejection), false, ctx)
        : rejected(ev.id, verified.rejection);
    const signed = verified.value;
    if (!user) {
      // A first contact: the account is saved by the statement that stores the event, in its commit; a transient
      // (ephemeral) event is not stored, so its author's account is saved now.
      user = ephemeral ? await deps.accounts.forPubkey(ev.pubkey) : deps.accounts.forNewAuthor(ev.pubkey);
      const refused = checkAccount(user) ?? (ev.pubkey === user.pubkey ? undefined : await checkLinkedKey(user, ev));
      if (refused) return rejected(ev.id, refused);
    }
    if (ephemeral) {
      publish(signed);
      return { status: 'accepted', eventId: ev.id, message: '' };
    }
    return reserveAndStore(user, signed, ctx);
  }

  /** Reserve (the author's quota), write, publish, settle: a signed event to be stored, from its hold to its answer. */
  async function reserveAndStore(user: UserRecord, signed: VerifiedEvent, ctx: AdmissionContext): Promise<Admission> {
    const held = await stages.reserveQuota?.(user, signed);
    if (held) {
      // refused as a new author's (the free plan, their other posts in flight): only if they are one, since the key
      // may name an account this process has not seen (AuthorLookup.isNew), whose plan and count then decide
      if (user.unsaved && (await deps.accounts.find(signed.pubkey))) {
        settle(user, signed, undefined, false, ctx);
        return admitExisting(signed, ctx);
      }
      return settle(user, signed, rejected(signed.id, held.rejection, held.quota), false, ctx);
    }

    let saved: Saved;
    try {
      saved = await save(user, signed, ctx);
    } catch (err) {
      if (err instanceof QuotaRollback)
        return settle(user, signed, rejected(signed.id, err.result.rejection, err.result.quota), false, ctx);
      log.error({ err, eventId: signed.id, pubkey: signed.pubkey, kind: signed.kind }, 'storing an event failed');
      return settle(
        user,
        signed,
        rejected(signed.id, rejection('error', 'could not store the event, try again later')),
        false,
        ctx,
      );
    }
    if (saved.status === 'author-exists') {
      settle(user, signed, undefined, false, ctx);
      return admitExisting(signed, ctx);
    }
    if (saved.author) deps.accounts.saved(saved.author);
    const result = outcomeAdmission(signed, saved);
    if (saved.status !== 'deleted') known.set(signed.id, true);
    if (saved.status === 'inserted') publish(signed);
    return settle(saved.author ?? user, signed, result, saved.status === 'inserted', ctx);
  }

  /**
   * A post presumed a new author's (nothing of it stored) whose key names an account after all: made by another
   * process since this one loaded its keys, or linked to an account. Admitted again as that account's, as any post
   * of an author not cached is; the account is saved, so this cannot come back here.
   */
  async function admitExisting(signed: VerifiedEvent, ctx: AdmissionContext): Promise<Admission> {
    const user = await deps.accounts.existing(signed.pubkey);
    if (!user) {
      log.warn({ eventId: signed.id, pubkey: signed.pubkey }, 'an account found by the storing statement is gone');
      return rejected(signed.id, rejection('error', 'could not store the event, try again later'));
    }
    const answered = await checkFound(user, signed, false, ctx);
    if (answered) return answered;
    return reserveAndStore(user, signed, ctx);
  }

  /** Settle, for the author's quota: told the outcome (a held post is released or counted); cannot change it. */
  function settle<O extends Admission | undefined>(
    user: UserRecord,
    ev: NostrEvent,
    outcome: O,
    committed: boolean,
    ctx: AdmissionContext,
  ): O {
    try {
      stages.onSettled?.(user, ev, outcome, committed, ctx);
    } catch (err) {
      log.error({ err, eventId: ev.id }, 'an admission listener failed');
    }
    return outcome;
  }

  async function admit(raw: unknown, ctx: AdmissionContext): Promise<Admission> {
    const started = process.hrtime.bigint();
    const outcome = await run(raw, ctx);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    for (const listener of settled) {
      try {
        listener(outcome, ctx, seconds);
      } catch (err) {
        log.error({ err, eventId: outcome.eventId }, 'an admission outcome listener failed');
      }
    }
    return outcome;
  }

  return {
    admit,
    forgetDeleted(ev) {
      if (ev.kind !== kinds.EventDeletion) return;
      for (const id of nip09.deletionTargets(ev).ids) known.delete(id);
    },
  };
}
