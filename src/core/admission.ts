// Admission: the one path every published event takes, from the relay and from the API alike. The stages run
// top to bottom; each `check…` may end the path with a rejection, cheap checks before the signature is
// verified. Only after the commit are subscribers told (fan-out) and the forwarder woken.
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import * as kinds from '../nips/kinds.js';
import * as nip01 from '../nips/nip01.js';
import * as nip09 from '../nips/nip09.js';
import * as nip40 from '../nips/nip40.js';
import * as nip70 from '../nips/nip70.js';
import { rejection, type Rejection } from '../nips/result.js';
import type { NostrEvent, VerifiedEvent } from '../nips/nip01.js';
import type { Forwarding } from '../store/forwarding-plan.js';
import type { UncappedPeriod } from '../store/quotas.js';
import { deleteReferenced, saveEvent, type EventRowExtras } from '../store/events.js';
import { createWriter, type Saved, type WriteJob } from './writer.js';
import { verifyHere, type Verify } from './verifier-pool.js';
import type { UserRecord } from '../store/users.js';
import type { Accounts } from './accounts.js';
import type { FanOut } from './fanout.js';
import type { Metrics } from './metrics.js';

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
  | { readonly status: 'rejected'; readonly eventId: string; readonly rejection: Rejection; readonly quota?: QuotaFacts | undefined };

/** Hooks the quota and forwarding stages plug into the admission transaction (see core/quota.ts, core/outbox.ts). */
export interface AdmissionStages {
  /**
   * Before verification, for a known author: answers from memory whether they are already at the limit. May wait
   * while the author's earlier posts are being admitted (core/post-gate.ts); onSettled ends what it let through.
   */
  precheckQuota?(user: UserRecord, ev: NostrEvent): Promise<{ rejection: Rejection; quota: QuotaFacts } | undefined>;
  /**
   * After verification, before the transaction: the fast shared check (Redis) that holds one post of the quota
   * until onSettled; a rejection ends the path. Only signed events get here, so a forged event cannot hold
   * anyone's quota.
   */
  reserveQuota?(user: UserRecord, ev: VerifiedEvent): Promise<{ rejection: Rejection; quota: QuotaFacts } | undefined>;
  /** Inside the transaction: charge the event; a rejection rolls the transaction back. */
  chargeQuota?(trx: Knex.Transaction, user: UserRecord, ev: VerifiedEvent): Promise<{ rejection: Rejection; quota: QuotaFacts } | undefined>;
  /**
   * Inside a group-commit transaction: charge many stored events at once (aligned answers: a rejection takes that
   * event back out of the batch). Without it, chargeQuota is called per event.
   */
  chargeQuotaBatch?(
    trx: Knex.Transaction,
    items: readonly { user: UserRecord; ev: VerifiedEvent }[],
  ): Promise<({ rejection: Rejection; quota: QuotaFacts } | undefined)[]>;
  /**
   * For a group-commit batch, before it is written: the ledger periods each event is counted in (none for a kind
   * that is not a post), when no event of the batch is counted against a cap. The batch is then written as one
   * statement that counts them too, without a transaction around it. Undefined: chargeQuotaBatch decides, in a
   * transaction.
   */
  unlimitedCharges?(items: readonly { user: UserRecord; ev: VerifiedEvent }[]): Promise<(readonly UncappedPeriod[])[] | undefined>;
  /** After such a one-statement write: the ledger's counts after it (`${userId}:${type}`), for the stored events. */
  chargedUnlimited?(items: readonly { user: UserRecord; ev: VerifiedEvent }[], totals: ReadonlyMap<string, number>): void;
  /**
   * For a group-commit batch (in its transaction, if it has one), before the events are stored: where each goes
   * (aligned answers), so that the rows and their outbox rows are written together. Without it, events of a batch are not forwarded.
   */
  planForwarding?(db: Knex, items: readonly { user: UserRecord; ev: VerifiedEvent }[]): Promise<Forwarding[]>;
  /** Inside the transaction: write the forwarding outbox rows for a stored event; true when it wrote any. */
  enqueueForwarding?(trx: Knex.Transaction, user: UserRecord, ev: VerifiedEvent, rowId: string): Promise<boolean>;
  /**
   * After the commit (or its failure), for every event that reached precheckQuota: told the outcome; cannot
   * change the answer. After verification `ev` is the same VerifiedEvent object reserveQuota and chargeQuota saw.
   */
  onSettled?(user: UserRecord, ev: NostrEvent, outcome: Admission, committed: boolean, ctx: AdmissionContext): void;
  /** NIP-86 bans: a rejection when the pubkey or event is banned. */
  checkBans?(ev: NostrEvent): Rejection | undefined;
}

export interface AdmissionDeps {
  readonly db: Knex;
  readonly config: Config;
  readonly log: Logger;
  readonly accounts: Accounts;
  readonly fanout: FanOut;
  readonly stages?: AdmissionStages;
  readonly onBatch?: (size: number, seconds: number) => void;
  /** Id and signature check; the verifier threads' (core/verifier-pool.ts), else on this thread. */
  readonly verify?: Verify;
  /** Seconds since the epoch; injectable for tests. */
  readonly now?: () => number;
}

export type Admit = (raw: unknown, ctx: AdmissionContext) => Promise<Admission>;

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

export function createAdmission(deps: AdmissionDeps): Admit {
  const { config, log, stages = {}, verify = verifyHere } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  // Ids this process stored or saw stored: clients retry, and a retry should cost no query and no verification.
  // An id stored by another process is not looked up before verifying: that query would cost every new event a
  // round trip to save the rare duplicate a verification; the insert tells duplicates apart anyway.
  const known = new LRUCache<string, true>({ max: 100_000 });
  // A deleted event is no longer "had": sent again it is refused as the store refuses it (blocked), by this process
  // as by any other. Deletions stored here and by other processes both reach the fan-out.
  deps.fanout.subscribe(({ event }) => {
    if (event.kind !== kinds.EventDeletion) return;
    for (const id of nip09.deletionTargets(event).ids) known.delete(id);
  });
  const limits: nip01.EventLimits = {
    maxContentLength: config.maxContentLength,
    maxEventTags: config.maxEventTags,
    maxTagElementLength: config.maxTagElementLength,
    createdAtPastSeconds: config.createdAtPastSeconds,
    createdAtFutureSeconds: config.createdAtFutureSeconds,
  };

  const rejected = (eventId: string, r: Rejection, quota?: QuotaFacts): Admission => ({ status: 'rejected', eventId, rejection: r, quota });
  const duplicate = (eventId: string): Admission => ({ status: 'duplicate', eventId, message: 'duplicate: already have this event' });

  function checkAuth(ev: NostrEvent, ctx: AdmissionContext): Rejection | undefined {
    if (config.authRequiredForWrite && ctx.via === 'relay') {
      if (ctx.authed.size === 0) return rejection('auth-required', 'this relay only accepts events after AUTH (NIP-42)');
      if (!ctx.authed.has(ev.pubkey)) return rejection('restricted', 'events must be signed by the authenticated pubkey');
    }
    if (nip70.isProtected(ev) && !ctx.authed.has(ev.pubkey)) {
      return rejection('auth-required', 'this event is protected (NIP-70): authenticate as its author to publish it');
    }
    return undefined;
  }

  function checkAccount(user: UserRecord): Rejection | undefined {
    if (user.status === 'suspended' || user.status === 'deleted') return rejection('blocked', `this account is ${user.status}`);
    return undefined;
  }

  function rowExtras(user: UserRecord, ev: VerifiedEvent, ctx: AdmissionContext): EventRowExtras {
    return {
      userId: user.id,
      dTag: kinds.replaceKey(ev),
      expiresAt: nip40.expiration(ev),
      sourcePlatform: ctx.source?.platform,
      tweet: ctx.source && { id: ctx.source.tweetId, url: ctx.source.tweetUrl, text: ctx.source.tweetText, username: ctx.source.username },
    };
  }

  async function store(user: UserRecord, ev: VerifiedEvent, ctx: AdmissionContext): Promise<Saved> {
    return storeJob({ user, ev, extras: rowExtras(user, ev, ctx) });
  }

  async function storeJob({ user, ev, extras }: WriteJob): Promise<Saved> {
    return deps.db.transaction(async (trx) => {
      const saved = await saveEvent(trx, ev, extras);
      if (saved.status !== 'inserted') return saved;
      if (ev.kind === kinds.EventDeletion) await deleteReferenced(trx, ev.pubkey, nip09.deletionTargets(ev), ev.created_at);
      const over = await stages.chargeQuota?.(trx, user, ev);
      if (over) throw new QuotaRollback(over);
      const queued = (await stages.enqueueForwarding?.(trx, user, ev, saved.rowId)) ?? false;
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

  function outcomeAdmission(ev: NostrEvent, saved: Saved): Admission {
    switch (saved.status) {
      case 'inserted':
        return { status: 'accepted', eventId: ev.id, message: '', queued: saved.queued };
      case 'duplicate':
        return duplicate(ev.id);
      case 'superseded':
        return { status: 'duplicate', eventId: ev.id, message: 'duplicate: a newer version of this event is already stored' };
      case 'deleted':
        return rejected(ev.id, rejection('blocked', 'this event was deleted by its author (NIP-09)'));
    }
  }

  return async function admit(raw, ctx) {
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
    const ephemeral = kinds.kindClass(ev.kind) === 'ephemeral';
    if (!ephemeral && known.has(ev.id)) return duplicate(ev.id);

    // Nothing is created before the signature is checked: a known author is looked up (cached), so that a
    // suspended one, or one already at the limit, is answered from memory, without I/O and without verifying.
    let user = await deps.accounts.find(ev.pubkey);
    if (user) {
      const refused = checkAccount(user);
      if (refused) return rejected(ev.id, refused);
      const early = ephemeral ? undefined : await stages.precheckQuota?.(user, ev);
      if (early) return settle(user, ev, rejected(ev.id, early.rejection, early.quota), false, ctx);
    }

    const verified = await verify(ev);
    if (!verified.ok) return user ? settle(user, ev, rejected(ev.id, verified.rejection), false, ctx) : rejected(ev.id, verified.rejection);
    const signed = verified.value;
    if (!user) {
      user = await deps.accounts.forPubkey(ev.pubkey);
      const refused = checkAccount(user);
      if (refused) return rejected(ev.id, refused);
    }
    if (ephemeral) {
      deps.fanout.publish(signed);
      return { status: 'accepted', eventId: ev.id, message: '' };
    }
    const held = await stages.reserveQuota?.(user, signed);
    if (held) return settle(user, signed, rejected(ev.id, held.rejection, held.quota), false, ctx);

    let saved: Saved;
    try {
      saved = await save(user, signed, ctx);
    } catch (err) {
      if (err instanceof QuotaRollback) return settle(user, signed, rejected(ev.id, err.result.rejection, err.result.quota), false, ctx);
      log.error({ err, eventId: ev.id, pubkey: ev.pubkey, kind: ev.kind }, 'storing an event failed');
      return settle(user, signed, rejected(ev.id, rejection('error', 'could not store the event, try again later')), false, ctx);
    }
    const result = outcomeAdmission(ev, saved);
    if (saved.status !== 'deleted') known.set(ev.id, true);
    if (saved.status === 'inserted') deps.fanout.publish(signed);
    return settle(user, signed, result, saved.status === 'inserted', ctx);
  };

  function settle(user: UserRecord, ev: NostrEvent, outcome: Admission, committed: boolean, ctx: AdmissionContext): Admission {
    try {
      stages.onSettled?.(user, ev, outcome, committed, ctx);
    } catch (err) {
      log.error({ err, eventId: ev.id }, 'an admission listener failed');
    }
    return outcome;
  }
}

/**
 * Wraps an admission function to count outcomes and time them (GET /metrics). The labelled series are looked up
 * once per label set: prom-client hashes the label object at every call otherwise, which a flood of refusals pays
 * 20,000 times a second.
 */
export function measured(admit: Admit, metrics: Pick<Metrics, 'events' | 'admissionSeconds'>): Admit {
  const counters = new Map<string, { inc(): void }>();
  const timers = new Map<string, { observe(seconds: number): void }>();
  const counterOf = (outcome: string, reason: string, via: string) => {
    const key = `${outcome}|${reason}|${via}`;
    let c = counters.get(key);
    if (!c) counters.set(key, (c = metrics.events.labels({ outcome, reason, via })));
    return c;
  };
  const timerOf = (outcome: string) => {
    let h = timers.get(outcome);
    if (!h) timers.set(outcome, (h = metrics.admissionSeconds.labels({ outcome })));
    return h;
  };
  return async (raw, ctx) => {
    const started = process.hrtime.bigint();
    const result = await admit(raw, ctx);
    const reason = result.status === 'rejected' ? result.rejection.prefix : '';
    counterOf(result.status, reason, ctx.via).inc();
    timerOf(result.status).observe(Number(process.hrtime.bigint() - started) / 1e9);
    return result;
  };
}
