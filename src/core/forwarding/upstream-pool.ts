// The upstream connection pool: one persistent WebSocket (the `ws` client) per upstream relay URL, opened on
// demand, reconnected with exponential backoff, kept alive with pings and closed after a long idle time. Many
// events are in flight on one connection at once; each relay `OK` is matched to its waiter by event id. The pool
// also keeps each relay's circuit breaker and fetches its NIP-11 document. It knows nothing of the outbox: the
// forwarder decides what an outcome means.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocket, type ClientOptions } from 'ws';
import type { Logger } from '../../log.js';
import { corkUntilNextTick } from '../../lib/ws-cork.js';
import { rawText } from '../../lib/ws-text.js';
import type { NostrEvent } from '../../nips/nip01.js';
import { parseRelayUrl } from '../../nips/relay-url.js';
import { checkHost, guardedLookup, type AddressPolicy } from './relay-targets.js';
import { fetchRelayInfo, type RelayInfo } from './upstream-info.js';
import { withDeadline } from '../../lib/deadline.js';

/** How one publish ended, as seen on the wire. */
export type PublishResult =
  /** The relay answered OK; `response` is its exact message. */
  | { readonly kind: 'answered'; readonly accepted: boolean; readonly message: string; readonly response: unknown[] }
  /** Sent, but no OK within the timeout. */
  | { readonly kind: 'timeout' }
  /** No open connection within the timeout. */
  | { readonly kind: 'connect-timeout' }
  /** The connection could not be opened (refused, DNS, TLS, handshake …). */
  | { readonly kind: 'connect-failed'; readonly error: string }
  /** The connection closed after the event was sent and before its OK. */
  | { readonly kind: 'dropped'; readonly error: string }
  /** The host resolves to an address the SSRF guard refuses. */
  | { readonly kind: 'not-allowed'; readonly error: string }
  /** The pool was closed while the publish waited. */
  | { readonly kind: 'shutdown' };

interface Transition {
  readonly status: 'connecting' | 'connected' | 'publishing' | 'answered' | 'failed';
  readonly at: string;
}

export interface PublishReport {
  readonly result: PublishResult;
  /** Time spent getting an open connection (0 when one was open already); null when none was obtained. */
  readonly connectionMs: number | null;
  /** Time from sending EVENT to the outcome; null when the event was not sent. */
  readonly publishMs: number | null;
  readonly totalMs: number;
  /** The connection was already open. */
  readonly reused: boolean;
  readonly remoteAddress: string | null;
  readonly transitions: Transition[];
}

export interface UpstreamPoolOptions {
  readonly log: Logger;
  /** Connect timeout, and again the OK timeout after sending. */
  readonly timeoutMs: number;
  /** First reconnect delay after a failed connect; doubles per consecutive failure up to backoffMaxMs. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Consecutive health failures that open the breaker, and how long it stays open. */
  readonly circuitFailures: number;
  readonly circuitPauseMs: number;
  /** SSRF guard for every URL except `trusted` ones (the operator's UPSTREAM_RELAYS). */
  readonly policy: AddressPolicy;
  readonly trusted: ReadonlySet<string>;
  /** Told when a relay's NIP-11 document was fetched. */
  readonly onInfo?: (url: string, info: RelayInfo) => void;
  readonly userAgent?: string;
  /** Close a connection with nothing in flight after this long (default 5 min). */
  readonly idleCloseMs?: number;
  /** Ping open connections this often; one unanswered ping closes the connection (default 30 s). */
  readonly pingMs?: number;
  /** Refetch NIP-11 documents this often (default 24 h). */
  readonly infoTtlMs?: number;
}

export interface BreakerState {
  /** Paused: do not attempt before `until`. */
  readonly paused: boolean;
  /** The pause is over but the failures are not: let one probe attempt through. */
  readonly halfOpen: boolean;
  readonly until: Date | null;
}

export interface UpstreamPool {
  publish(url: string, ev: NostrEvent): Promise<PublishReport>;
  /** A health outcome for the breaker: 'ok' (the relay answered) or 'fail'. Returns the pause end when it opened. */
  reportHealth(url: string, health: 'ok' | 'fail'): Date | null;
  breaker(url: string): BreakerState;
  /** Relays whose breaker is open right now. */
  pausedUrls(): string[];
  /** The NIP-11 document fetched for this relay, if any. */
  info(url: string): RelayInfo | undefined;
  /** Connections currently open. */
  openConnections(): number;
  /** Fails every waiting publish with 'shutdown' and closes every connection. */
  close(): Promise<void>;
}

class ShutdownError extends Error {}
class DeadlineError extends Error {}

type Waiter = (r: PublishResult) => void;

interface Upstream {
  readonly url: string;
  ws: WebSocket | null;
  open: boolean;
  connecting: Promise<WebSocket> | null;
  connectFailures: number;
  nextConnectAt: number;
  readonly waiters: Map<string, Set<Waiter>>;
  inflight: number;
  lastUsed: number;
  awaitingPong: boolean;
  remoteAddress: string | null;
  healthFailures: number;
  pausedUntil: number;
  info: RelayInfo | undefined;
  infoFetchedAt: number;
}

const iso = () => new Date().toISOString();
const elapsed = (from: number) => Math.max(0, Math.round(performance.now() - from));

function sleep(ms: number, signal: { closed: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.closed) return reject(new ShutdownError('pool closed'));
    setTimeout(() => (signal.closed ? reject(new ShutdownError('pool closed')) : resolve()), ms).unref();
  });
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export function createUpstreamPool(o: UpstreamPoolOptions): UpstreamPool {
  const upstreams = new Map<string, Upstream>();
  const state = { closed: false };
  const idleCloseMs = o.idleCloseMs ?? 5 * 60_000;
  const infoTtlMs = o.infoTtlMs ?? 24 * 3600_000;
  const log = o.log.child({ mod: 'upstream-pool' });

  function get(url: string): Upstream {
    let up = upstreams.get(url);
    if (!up) {
      up = {
        url,
        ws: null,
        open: false,
        connecting: null,
        connectFailures: 0,
        nextConnectAt: 0,
        waiters: new Map(),
        inflight: 0,
        lastUsed: Date.now(),
        awaitingPong: false,
        remoteAddress: null,
        healthFailures: 0,
        pausedUntil: 0,
        info: undefined,
        infoFetchedAt: 0,
      };
      upstreams.set(url, up);
    }
    return up;
  }

  function failWaiters(up: Upstream, result: PublishResult): void {
    const all = [...up.waiters.values()];
    up.waiters.clear();
    for (const set of all) for (const w of set) w(result);
  }

  function reconnectDelay(failures: number): number {
    return Math.min(o.backoffMaxMs, o.backoffBaseMs * 2 ** Math.max(0, failures - 1));
  }

  function socketOnMessage(up: Upstream, data: WebSocket.RawData): void {
    let msg: unknown;
    try {
      msg = JSON.parse(rawText(data));
    } catch {
      return;
    }
    if (!Array.isArray(msg)) return;
    if (msg[0] === 'OK' && typeof msg[1] === 'string') {
      const set = up.waiters.get(msg[1]);
      if (!set) return; // a late answer to an attempt that already timed out
      up.waiters.delete(msg[1]);
      const result: PublishResult = {
        kind: 'answered',
        accepted: msg[2] === true,
        message: typeof msg[3] === 'string' ? msg[3] : '',
        response: msg,
      };
      for (const w of set) w(result);
    } else if (msg[0] === 'NOTICE') {
      log.debug({ relay: up.url, notice: msg[1] }, 'upstream NOTICE');
    }
  }

  async function checkLiteral(up: Upstream): Promise<void> {
    if (o.trusted.has(up.url)) return;
    const parsed = parseRelayUrl(up.url);
    if (!parsed.ok) throw Object.assign(new Error(parsed.rejection.message), { code: 'ENOTALLOWED' });
    if (net.isIP(parsed.value.host) === 0) return; // names are checked by the guarded lookup, on connect
    const r = await checkHost(parsed.value.host, o.policy);
    if (!r.ok) throw Object.assign(new Error(r.rejection.message), { code: 'ENOTALLOWED' });
  }

  async function openSocket(up: Upstream): Promise<WebSocket> {
    const wait = up.nextConnectAt - Date.now();
    if (wait > 0) await sleep(wait, state);
    if (state.closed) throw new ShutdownError('pool closed');
    try {
      await checkLiteral(up);
      const options: ClientOptions & { lookup?: ReturnType<typeof guardedLookup> } = {
        handshakeTimeout: o.timeoutMs,
        perMessageDeflate: false,
        followRedirects: false,
        maxPayload: 1024 * 1024,
        headers: { 'User-Agent': o.userAgent ?? 'nostrx-relay' },
        ...(o.trusted.has(up.url) ? {} : { lookup: guardedLookup(o.policy) }),
      };
      const ws = new WebSocket(up.url, options);
      ws.on('error', (err) => log.debug({ relay: up.url, err: errorText(err) }, 'upstream connection error'));
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => {
          ws.off('open', onOpen);
          reject(err);
        };
        const onOpen = () => {
          ws.off('error', onError);
          resolve();
        };
        ws.once('open', onOpen);
        ws.once('error', onError);
      });
      if (state.closed) {
        ws.terminate();
        throw new ShutdownError('pool closed');
      }
      up.ws = ws;
      up.open = true;
      up.connectFailures = 0;
      up.nextConnectAt = 0;
      up.awaitingPong = false;
      const sock = (ws as unknown as { _socket?: net.Socket })._socket;
      up.remoteAddress = sock?.remoteAddress ?? null;
      ws.on('message', (data) => socketOnMessage(up, data));
      ws.on('pong', () => {
        up.awaitingPong = false;
      });
      ws.on('close', (code, reason) => {
        if (up.ws === ws) {
          up.ws = null;
          up.open = false;
        }
        failWaiters(up, {
          kind: 'dropped',
          error: `connection closed (${code}${reason.length ? ` ${String(reason)}` : ''})`,
        });
      });
      if (Date.now() - up.infoFetchedAt > infoTtlMs) {
        up.infoFetchedAt = Date.now();
        void fetchInfo(up);
      }
      return ws;
    } catch (err) {
      if (err instanceof ShutdownError) throw err;
      up.connectFailures += 1;
      up.nextConnectAt = Date.now() + reconnectDelay(up.connectFailures);
      throw err;
    }
  }

  function connect(up: Upstream): Promise<WebSocket> {
    if (up.ws && up.open) return Promise.resolve(up.ws);
    if (!up.connecting) {
      const p = openSocket(up).finally(() => {
        if (up.connecting === p) up.connecting = null;
      });
      p.catch(() => undefined); // observed by the callers that wait for it
      up.connecting = p;
    }
    return up.connecting;
  }

  async function fetchInfo(up: Upstream): Promise<void> {
    try {
      const info = await fetchRelayInfo(up.url, {
        timeoutMs: Math.min(o.timeoutMs, 5000),
        userAgent: o.userAgent ?? 'nostrx-relay',
        ...(o.trusted.has(up.url) ? {} : { lookup: guardedLookup(o.policy) }),
      });
      up.info = info;
      o.onInfo?.(up.url, info);
    } catch (err) {
      log.debug({ relay: up.url, err: errorText(err) }, 'could not fetch the NIP-11 document');
    }
  }

  const keepAlive = setInterval(() => {
    const now = Date.now();
    for (const up of upstreams.values()) {
      if (!up.ws || !up.open) continue;
      if (up.inflight === 0 && now - up.lastUsed > idleCloseMs) {
        up.ws.close(1000, 'idle');
        continue;
      }
      if (up.awaitingPong) {
        up.ws.terminate();
        continue;
      }
      up.awaitingPong = true;
      up.ws.ping();
    }
  }, o.pingMs ?? 30_000);
  keepAlive.unref();

  async function publish(url: string, ev: NostrEvent): Promise<PublishReport> {
    const up = get(url);
    up.inflight += 1;
    up.lastUsed = Date.now();
    const started = performance.now();
    const transitions: Transition[] = [{ status: 'connecting', at: iso() }];
    const reused = up.open;
    const report = (result: PublishResult, connectionMs: number | null, publishMs: number | null): PublishReport => {
      transitions.push({ status: result.kind === 'answered' ? 'answered' : 'failed', at: iso() });
      return {
        result,
        connectionMs,
        publishMs,
        totalMs: elapsed(started),
        reused,
        remoteAddress: up.remoteAddress,
        transitions,
      };
    };
    try {
      if (state.closed) return report({ kind: 'shutdown' }, null, null);
      let ws: WebSocket;
      try {
        ws = await withDeadline(
          connect(up),
          o.timeoutMs,
          () => new DeadlineError(`no connection within ${o.timeoutMs} ms`),
        );
      } catch (err) {
        if (err instanceof ShutdownError || state.closed) return report({ kind: 'shutdown' }, null, null);
        if (err instanceof DeadlineError) return report({ kind: 'connect-timeout' }, null, null);
        if ((err as { code?: unknown }).code === 'ENOTALLOWED')
          return report({ kind: 'not-allowed', error: errorText(err) }, null, null);
        return report({ kind: 'connect-failed', error: errorText(err) }, null, null);
      }
      const connectionMs = reused ? 0 : elapsed(started);
      transitions.push({ status: 'connected', at: iso() });
      const sentAt = performance.now();
      let waiter: Waiter | undefined;
      let timer: NodeJS.Timeout | undefined;
      const result = await new Promise<PublishResult>((resolve) => {
        waiter = resolve;
        let set = up.waiters.get(ev.id);
        if (!set) up.waiters.set(ev.id, (set = new Set()));
        set.add(resolve);
        timer = setTimeout(() => resolve({ kind: 'timeout' }), o.timeoutMs);
        transitions.push({ status: 'publishing', at: iso() });
        corkUntilNextTick(ws); // a claimed batch's events to this relay leave in one write
        ws.send(JSON.stringify(['EVENT', ev]), (err) => {
          if (err) resolve({ kind: 'dropped', error: errorText(err) });
        });
      });
      clearTimeout(timer);
      const set = up.waiters.get(ev.id);
      if (set && waiter) {
        set.delete(waiter);
        if (set.size === 0) up.waiters.delete(ev.id);
      }
      return report(result, connectionMs, elapsed(sentAt));
    } finally {
      up.inflight -= 1;
      up.lastUsed = Date.now();
    }
  }

  return {
    publish,
    reportHealth(url, health) {
      const up = get(url);
      if (health === 'ok') {
        up.healthFailures = 0;
        up.pausedUntil = 0;
        return null;
      }
      up.healthFailures += 1;
      if (up.healthFailures >= o.circuitFailures) {
        up.pausedUntil = Date.now() + o.circuitPauseMs;
        return new Date(up.pausedUntil);
      }
      return null;
    },
    breaker(url) {
      const up = upstreams.get(url);
      if (!up || up.healthFailures < o.circuitFailures) return { paused: false, halfOpen: false, until: null };
      const paused = Date.now() < up.pausedUntil;
      return { paused, halfOpen: !paused, until: new Date(up.pausedUntil) };
    },
    pausedUrls() {
      const now = Date.now();
      return [...upstreams.values()]
        .filter((u) => u.healthFailures >= o.circuitFailures && now < u.pausedUntil)
        .map((u) => u.url);
    },
    info: (url) => upstreams.get(url)?.info,
    openConnections: () => [...upstreams.values()].filter((u) => u.open).length,
    async close() {
      state.closed = true;
      clearInterval(keepAlive);
      const closing: Promise<void>[] = [];
      for (const up of upstreams.values()) {
        failWaiters(up, { kind: 'shutdown' });
        const ws = up.ws;
        if (ws) {
          closing.push(
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                ws.terminate();
                resolve();
              }, 1000);
              ws.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
              ws.close(1001, 'shutting down');
            }),
          );
        }
      }
      await Promise.all(closing);
    },
  };
}
