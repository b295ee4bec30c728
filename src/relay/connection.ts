// One WebSocket client: its messages are handled strictly in order (a queue per connection), its
// subscriptions live in the shared index, and everything it is sent passes the slow-reader guard.
import type { WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { corkUntilNextTick } from '../lib/ws-cork.js';
import * as filter from '../nips/filter.js';
import type { Filter, FilterLimits } from '../nips/filter.js';
import * as messages from '../nips/messages.js';
import type { MessageLimits } from '../nips/messages.js';
import * as nip42 from '../nips/nip42.js';
import { ok, type Rejection, type Result } from '../nips/result.js';
import type { Admit } from '../core/admission/index.js';
import type { EventQueries, NegentropySessions } from '../core/events/index.js';
import { createFairShare } from './fair-share.js';
import type { SubscriptionIndex, Subscriber } from './subscriptions.js';

interface ConnectionLimits extends MessageLimits, FilterLimits {
  readonly maxMessageBytes: number;
  readonly maxSubscriptions: number;
  readonly maxBufferedBytes: number;
  /** Messages queued on one connection before its socket is paused (backpressure). */
  readonly maxQueued: number;
}

export interface ConnectionDeps {
  readonly log: Logger;
  readonly admit: Admit;
  readonly queries: EventQueries;
  readonly subscriptions: SubscriptionIndex;
  readonly limits: ConnectionLimits;
  readonly relayUrl: string;
  readonly authWindowSeconds: number;
  /** Per-IP and per-connection message rate limits (core/quota/rate-limits.ts); a rejection answers the message. */
  readonly checkRate?: (ip: string, connId: string) => Promise<Rejection | undefined>;
  readonly onMessage?: (type: string) => void;
  readonly onSlowReader?: () => void;
  readonly now?: () => number;
  /** NIP-77: this connection's negentropy sessions (core/events/negentropy-sessions.ts); absent when it is off. */
  readonly negentropy?: (onIdleClosed: (subId: string, reason: string) => void) => NegentropySessions;
}

let nextConnId = 0;

/** WebSocket close code 1008: the peer broke a rule (here: it does not read what it asked for). */
const POLICY_VIOLATION = 1008;
/** How long a dropped slow reader has to read up to our close frame before its socket is cut. */
const SLOW_READER_GRACE_MS = 2000;

export class Connection implements Subscriber {
  readonly id = `c${++nextConnId}`;
  readonly challenge = nip42.makeChallenge();
  private readonly authed = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  /** This connection's share of each turn of the event loop (relay/fair-share.ts). */
  private readonly share = createFairShare();
  /** Messages received and not yet answered (EVENT admissions included). */
  private queued = 0;
  private readonly inflight = new Set<Promise<void>>();
  private draining = false;
  private paused = false;
  private closed = false;
  /** Subscriptions whose stored events are still being sent; live events wait here until EOSE. */
  private readonly backlog = new Map<string, string[]>();
  private readonly neg: NegentropySessions | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly ip: string,
    private readonly deps: ConnectionDeps,
  ) {
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', () => this.onClose());
    ws.on('error', (err) => deps.log.debug({ err, conn: this.id }, 'websocket error'));
    this.neg = deps.negentropy?.((subId, reason) => this.send(messages.negErrMessage(subId, reason)));
    this.send(messages.authChallengeMessage(this.challenge));
  }

  get authedPubkeys(): ReadonlySet<string> {
    return this.authed;
  }

  deliver(subId: string, eventJson: string): void {
    const pending = this.backlog.get(subId);
    if (pending) {
      pending.push(eventJson);
      return;
    }
    this.send(messages.eventMessage(subId, eventJson));
  }

  private send(text: string): void {
    if (this.closed) return;
    // A reader that does not keep up would make us buffer without bound: past the ceiling it is dropped.
    if (this.ws.bufferedAmount > this.deps.limits.maxBufferedBytes) return this.dropSlowReader();
    corkUntilNextTick(this.ws);
    this.ws.send(text);
  }

  /**
   * Nothing more is queued for it: a close frame with the reason goes after what is already buffered (a reader
   * that catches up learns why), and the socket is cut if the reader has not caught up by then.
   */
  private dropSlowReader(): void {
    this.deps.log.warn({ conn: this.id, ip: this.ip, buffered: this.ws.bufferedAmount }, 'dropping a slow reader');
    this.deps.onSlowReader?.();
    this.closed = true;
    this.deps.subscriptions.removeOwner(this);
    this.ws.close(
      POLICY_VIOLATION,
      `slow reader: more than ${this.deps.limits.maxBufferedBytes} bytes were waiting to be read`,
    );
    setTimeout(() => this.ws.terminate(), SLOW_READER_GRACE_MS).unref();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (isBinary) {
      this.send(messages.noticeMessage('invalid: binary messages are not supported, send JSON text'));
      return;
    }
    if (data.length > this.deps.limits.maxMessageBytes) {
      this.send(
        messages.noticeMessage(
          `invalid: message is ${data.length} bytes, the limit is ${this.deps.limits.maxMessageBytes}`,
        ),
      );
      return;
    }
    const text = data.toString('utf8');
    this.queued++;
    if (this.queued >= this.deps.limits.maxQueued && !this.paused) {
      this.paused = true;
      this.ws.pause();
    }
    // Messages start in order (AUTH before the EVENT after it, REQ before its CLOSE). An EVENT's admission then
    // runs on while the next messages start: the store's rules do not depend on arrival order (newest version
    // wins, deletions hold either way), and concurrent admissions share group commits.
    this.queue = this.queue.then(async () => {
      await this.share();
      let tail: Promise<void> | undefined;
      try {
        tail = (await this.handle(text))?.tail;
      } catch (err) {
        this.failed(err);
      }
      if (!tail) return this.finished();
      this.inflight.add(tail);
      tail
        .catch((err: unknown) => this.failed(err))
        .finally(() => {
          this.inflight.delete(tail);
          this.finished();
        });
    });
  }

  private failed(err: unknown): void {
    this.deps.log.error({ err, conn: this.id }, 'handling a message failed');
    this.send(messages.noticeMessage('error: internal error while handling the message'));
  }

  private finished(): void {
    this.queued--;
    if (this.paused && !this.draining && this.queued < this.deps.limits.maxQueued / 2) {
      this.paused = false;
      this.ws.resume();
    }
  }

  private async handle(text: string): Promise<{ tail: Promise<void> } | void> {
    const parsed = messages.parseClientMessage(text, this.deps.limits);
    if (!parsed.ok) {
      if (parsed.subId !== undefined && parsed.negentropy)
        this.send(messages.negErrMessage(parsed.subId, parsed.rejection.message));
      else if (parsed.subId !== undefined) this.send(messages.closedMessage(parsed.subId, parsed.rejection.message));
      else this.send(messages.noticeMessage(parsed.rejection.message));
      return;
    }
    const msg = parsed.value;
    this.deps.onMessage?.(msg.type);
    const limited = await this.deps.checkRate?.(this.ip, this.id);
    if (limited) return this.refuse(msg, limited);
    switch (msg.type) {
      case 'EVENT':
        return { tail: this.onEvent(msg.event) };
      case 'REQ':
        return this.onReq(msg.subId, msg.filters);
      case 'COUNT':
        return this.onCount(msg.subId, msg.filters);
      case 'CLOSE':
        this.backlog.delete(msg.subId);
        this.deps.subscriptions.remove(this, msg.subId);
        return;
      case 'AUTH':
        return this.onAuth(msg.event);
      case 'NEG-OPEN':
        return this.onNegOpen(msg.subId, msg.filters, msg.message);
      case 'NEG-MSG':
        return this.onNegMsg(msg.subId, msg.message);
      case 'NEG-CLOSE':
        this.neg?.close(msg.subId);
        return;
    }
  }

  private refuse(msg: messages.ClientMessage, r: Rejection): void {
    switch (msg.type) {
      case 'EVENT':
      case 'AUTH': {
        const id = (msg.event as { id?: unknown } | null)?.id;
        this.send(messages.okMessage(typeof id === 'string' ? id : '', false, r.message));
        return;
      }
      case 'REQ':
      case 'COUNT':
        this.send(messages.closedMessage(msg.subId, r.message));
        return;
      case 'CLOSE':
        this.send(messages.noticeMessage(r.message));
        return;
      case 'NEG-OPEN':
      case 'NEG-MSG':
      case 'NEG-CLOSE':
        this.send(messages.negErrMessage(msg.subId, r.message));
    }
  }

  private async onEvent(raw: unknown): Promise<void> {
    const result = await this.deps.admit(raw, { via: 'relay', authed: this.authed, ip: this.ip });
    switch (result.status) {
      case 'accepted':
        return this.send(messages.okMessage(result.eventId, true, result.message));
      case 'duplicate':
        return this.send(messages.okMessage(result.eventId, true, result.message));
      case 'rejected':
        return this.send(messages.okMessage(result.eventId, false, result.rejection.message));
    }
  }

  private parseFilters(subId: string, raw: unknown[]): Filter[] | undefined {
    const r = this.filtersOf(raw);
    if (r.ok) return r.value;
    this.send(messages.closedMessage(subId, r.rejection.message));
    return undefined;
  }

  /** The filters of a REQ, COUNT or NEG-OPEN, by the same rules for all three. */
  private filtersOf(raw: unknown[]): Result<Filter[]> {
    const out: Filter[] = [];
    for (const f of raw) {
      const r: Result<Filter> = filter.parseFilter(f, this.deps.limits);
      if (!r.ok) return r;
      out.push(r.value);
    }
    return ok(out);
  }

  /** NIP-77: reconciles the stored events a REQ with these filters would read (not only its first page). */
  private async onNegOpen(subId: string, raw: unknown[], hex: string): Promise<void> {
    if (!this.neg)
      return this.send(messages.negErrMessage(subId, 'unsupported: negentropy (NIP-77) is not enabled on this relay'));
    const filters = this.filtersOf(raw);
    if (!filters.ok) return this.send(messages.negErrMessage(subId, filters.rejection.message));
    let answer;
    try {
      answer = await this.neg.open(subId, filters.value, hex);
    } catch (err) {
      this.deps.log.error({ err, conn: this.id, subId }, 'opening a negentropy session failed');
      return this.send(messages.negErrMessage(subId, 'error: could not read stored events, try again later'));
    }
    this.send(
      'reply' in answer ? messages.negMsgMessage(subId, answer.reply) : messages.negErrMessage(subId, answer.error),
    );
  }

  private onNegMsg(subId: string, hex: string): void {
    if (!this.neg)
      return this.send(messages.negErrMessage(subId, 'unsupported: negentropy (NIP-77) is not enabled on this relay'));
    const answer = this.neg.message(subId, hex);
    this.send(
      'reply' in answer ? messages.negMsgMessage(subId, answer.reply) : messages.negErrMessage(subId, answer.error),
    );
  }

  private async onReq(subId: string, raw: unknown[]): Promise<void> {
    const filters = this.parseFilters(subId, raw);
    if (!filters) {
      this.deps.subscriptions.remove(this, subId);
      return;
    }
    const { subscriptions, limits } = this.deps;
    if (!subscriptions.has(this, subId) && subscriptions.count(this) >= limits.maxSubscriptions) {
      this.send(
        messages.closedMessage(
          subId,
          `rate-limited: too many open subscriptions, the limit is ${limits.maxSubscriptions}`,
        ),
      );
      return;
    }
    // Live delivery starts before the stored query so nothing published meanwhile is missed; it is held back
    // until EOSE and sent then, without the events the query already returned.
    this.backlog.set(subId, []);
    subscriptions.add(this, subId, filters);
    let stored;
    try {
      stored = await this.deps.queries.query(filters);
    } catch (err) {
      this.backlog.delete(subId);
      subscriptions.remove(this, subId);
      this.deps.log.error({ err, conn: this.id, subId }, 'query failed');
      this.send(messages.closedMessage(subId, 'error: could not read stored events, try again later'));
      return;
    }
    const pending = this.backlog.get(subId);
    if (pending === undefined) return; // closed or replaced while the query ran
    const sent = new Set<string>();
    for (const ev of stored) {
      sent.add(ev.id);
      this.send(messages.eventMessage(subId, ev.json));
    }
    this.send(messages.eoseMessage(subId));
    this.backlog.delete(subId);
    for (const json of pending) {
      const id = (JSON.parse(json) as { id: string }).id;
      if (!sent.has(id)) this.send(messages.eventMessage(subId, json));
    }
  }

  private async onCount(subId: string, raw: unknown[]): Promise<void> {
    const filters = this.parseFilters(subId, raw);
    if (!filters) return;
    try {
      this.send(messages.countMessage(subId, await this.deps.queries.count(filters)));
    } catch (err) {
      this.deps.log.error({ err, conn: this.id, subId }, 'count failed');
      this.send(messages.closedMessage(subId, 'error: could not count stored events, try again later'));
    }
  }

  private onAuth(raw: unknown): void {
    const id = (raw as { id?: unknown } | null)?.id;
    const r = nip42.verifyAuthEvent(raw, {
      challenge: this.challenge,
      relayUrl: this.deps.relayUrl,
      nowSeconds: this.deps.now?.() ?? Math.floor(Date.now() / 1000),
      windowSeconds: this.deps.authWindowSeconds,
    });
    if (!r.ok) {
      this.send(messages.okMessage(typeof id === 'string' ? id : '', false, r.rejection.message));
      return;
    }
    this.authed.add(r.value);
    this.send(messages.okMessage(typeof id === 'string' ? id : '', true, ''));
  }

  private onClose(): void {
    this.closed = true;
    this.backlog.clear();
    this.neg?.closeAll();
    this.deps.subscriptions.removeOwner(this);
  }

  /** Stops reading new messages and resolves once every message already received has been answered. */
  async drain(): Promise<void> {
    this.draining = true;
    this.ws.pause();
    this.paused = true;
    let seen: Promise<void> | undefined;
    while (seen !== this.queue || this.inflight.size > 0) {
      seen = this.queue;
      await seen;
      await Promise.allSettled([...this.inflight]);
    }
  }

  /** Closes with a proper close code (graceful shutdown). */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.deps.subscriptions.removeOwner(this);
    this.neg?.closeAll();
    // drain() paused reading; the client's answer to our close frame must be read for the close to complete
    this.ws.resume();
    this.ws.close(code, reason);
  }
}
