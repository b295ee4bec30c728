// Small upstream relays on loopback ports for the forwarding tests, each misbehaving in one way on purpose: a real
// WebSocket server (ws) that speaks just enough NIP-01 to take EVENTs, plus a NIP-11 document over HTTP. Every
// EVENT it gets is kept in `received` with its arrival time, so a test can check what reached the relay and when.
// It also serves REQ/CLOSE (stored non-ephemeral events, EOSE, then live ones), so Nostr clients can talk through
// it (the Lightning tests' NIP-47 wallet and the service's NWC client).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { matchFilters, type Filter } from 'nostr-tools/filter';
import type { NostrEvent } from 'nostr-tools/pure';
import { WebSocketServer, type WebSocket } from 'ws';
import * as nip77 from '../../src/nips/nip77.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ReceivedEvent {
  readonly id: string;
  readonly event: Record<string, unknown>;
  /** Date.now() when the EVENT arrived. */
  readonly at: number;
}

/** What the relay does with an EVENT: answer OK (after an optional delay), say nothing, or drop the connection. */
type Reaction = { ok: boolean; message: string; delayMs?: number } | 'silent' | 'drop';

export interface TestRelayOptions {
  readonly name: string;
  /** Decides the reaction to the n-th EVENT (0-based, counted over the relay's life). Default: OK true. */
  readonly react?: (ev: { id: string }, n: number) => Reaction;
  /** After a 'drop', stay down (not listening) this long, then come back. Default 0: stay up. */
  readonly downAfterDropMs?: number;
  /** Start down: the port is reserved but nothing listens until start(). */
  readonly startDown?: boolean;
  /**
   * Keep the events it takes and answer NIP-77 (NEG-OPEN / NEG-MSG) over them, listing 77 in its NIP-11 document.
   * `forget` decides, for an event taken for the first time, whether it is dropped right after its OK true: a relay
   * that loses what it acknowledged.
   */
  readonly negentropy?: { readonly forget?: (id: string) => boolean };
}

export interface TestRelay {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly received: ReceivedEvent[];
  /** WebSocket connections accepted so far. */
  connections: number;
  /** NIP-11 requests answered so far. */
  infoRequests: number;
  /** Times the relay came up (start() or back after a drop). */
  readonly upAt: number[];
  /** How many times this event id arrived. */
  count(id: string): number;
  /** With `negentropy`: the events it holds now, by id. */
  readonly held: Map<string, Record<string, unknown>>;
  /** Start listening (no-op when up). */
  start(): Promise<void>;
  /** Stop listening and drop every connection. */
  stop(): Promise<void>;
  isUp(): boolean;
}

export async function startTestRelay(t: Teardown, opts: TestRelayOptions): Promise<TestRelay> {
  const react: (ev: { id: string }, n: number) => Reaction = opts.react ?? (() => ({ ok: true, message: '' }));
  const seen = new Set<string>();
  /** Open subscriptions: connection → subscription id → filters. */
  const subscriptions = new Map<WebSocket, Map<string, Filter[]>>();
  let n = 0;
  let server: http.Server | null = null;
  let wss: WebSocketServer | null = null;
  let closedForGood = false;

  // Reserve a port: listen on 0, note the port, and close again when starting down.
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));

  const relay: TestRelay = {
    name: opts.name,
    url: `ws://127.0.0.1:${port}/`,
    port,
    received: [],
    connections: 0,
    infoRequests: 0,
    upAt: [],
    count: (id) => relay.received.filter((r) => r.id === id).length,
    held: new Map(),
    isUp: () => server !== null,
    async start() {
      if (server || closedForGood) return;
      const s = http.createServer((req, res) => {
        if ((req.headers.accept ?? '').includes('application/nostr+json')) {
          relay.infoRequests += 1;
          res.writeHead(200, { 'Content-Type': 'application/nostr+json', 'Access-Control-Allow-Origin': '*' });
          res.end(
            JSON.stringify({
              name: `${opts.name} test relay`,
              description: 'misbehaves on purpose',
              supported_nips: [11, 1, 'x', 1, ...(opts.negentropy ? [77] : [])],
            }),
          );
          return;
        }
        res.writeHead(404).end();
      });
      const w = new WebSocketServer({ server: s });
      w.on('connection', (ws) => {
        relay.connections += 1;
        subscriptions.set(ws, new Map());
        ws.on('message', (data) => onMessage(ws, data));
        ws.on('close', () => subscriptions.delete(ws));
        ws.on('error', () => undefined);
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve());
      });
      server = s;
      wss = w;
      relay.upAt.push(Date.now());
    },
    async stop() {
      const s = server;
      const w = wss;
      server = null;
      wss = null;
      if (!s || !w) return;
      for (const c of w.clients) c.terminate();
      await new Promise<void>((r) => w.close(() => r()));
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
  };

  const forgotten = new Set<string>();
  const sessions = new WeakMap<WebSocket, Map<string, nip77.Responder>>();

  /** NIP-77 over the events it holds, with the relay side of src/nips/nip77.ts. */
  function onNegentropy(ws: WebSocket, msg: unknown[]): void {
    const subId = String(msg[1]);
    let open = sessions.get(ws);
    if (!open) sessions.set(ws, (open = new Map()));
    if (msg[0] === 'NEG-CLOSE') {
      open.delete(subId);
      return;
    }
    if (msg[0] === 'NEG-OPEN') {
      const filters = (Array.isArray(msg[2]) ? msg[2] : [msg[2]]) as Filter[];
      const events = [...relay.held.values()] as unknown as NostrEvent[];
      const matching = events
        .filter((ev) => matchFilters(filters, ev))
        .map((ev) => ({ createdAt: ev.created_at, id: ev.id }));
      open.set(subId, nip77.createResponder(nip77.storageOf(matching)));
    }
    const responder = open.get(subId);
    const hex = msg[0] === 'NEG-OPEN' ? msg[3] : msg[2];
    if (!responder || typeof hex !== 'string') {
      ws.send(JSON.stringify(['NEG-ERR', subId, 'closed: no such session']));
      return;
    }
    ws.send(JSON.stringify(['NEG-MSG', subId, nip77.toHex(responder.respond(nip77.fromHex(hex) ?? new Uint8Array()))]));
  }

  function onMessage(ws: WebSocket, data: unknown): void {
    let msg: unknown;
    try {
      msg = JSON.parse(String(data));
    } catch {
      ws.send(JSON.stringify(['NOTICE', 'invalid: not JSON']));
      return;
    }
    if (!Array.isArray(msg)) return;
    if (opts.negentropy && typeof msg[0] === 'string' && msg[0].startsWith('NEG-')) return onNegentropy(ws, msg);
    if (msg[0] === 'REQ' && typeof msg[1] === 'string') return subscribe(ws, msg[1], msg.slice(2) as Filter[]);
    if (msg[0] === 'CLOSE' && typeof msg[1] === 'string') return void subscriptions.get(ws)?.delete(msg[1]);
    if (msg[0] !== 'EVENT' || typeof msg[1] !== 'object' || msg[1] === null) return;
    const event = msg[1] as Record<string, unknown>;
    const id = String(event.id);
    relay.received.push({ id, event, at: Date.now() });
    const reaction = react({ id }, n++);
    if (reaction === 'silent') return;
    if (reaction === 'drop') {
      ws.terminate();
      if (opts.downAfterDropMs) {
        void relay.stop().then(() => setTimeout(() => void relay.start(), opts.downAfterDropMs));
      }
      return;
    }
    const answer = () => {
      const duplicate = seen.has(id);
      seen.add(id);
      if (opts.negentropy && reaction.ok) {
        // a relay that loses some of what it acknowledges: each such event once (sent again, it stays)
        if (!forgotten.has(id) && opts.negentropy.forget?.(id)) forgotten.add(id);
        else relay.held.set(id, event);
      }
      if (reaction.ok && duplicate) ws.send(JSON.stringify(['OK', id, true, 'duplicate: already have this event']));
      else ws.send(JSON.stringify(['OK', id, reaction.ok, reaction.message]));
      if (reaction.ok && !duplicate) deliver(event as unknown as NostrEvent);
    };
    if (reaction.delayMs) setTimeout(answer, reaction.delayMs);
    else answer();
  }

  /** REQ: the stored events that match (ephemeral kinds are not stored), EOSE, then matching events as they come. */
  function subscribe(ws: WebSocket, subId: string, filters: Filter[]): void {
    subscriptions.get(ws)?.set(subId, filters);
    for (const r of relay.received) {
      const ev = r.event as unknown as NostrEvent;
      if (!(ev.kind >= 20000 && ev.kind < 30000) && matchFilters(filters, ev))
        ws.send(JSON.stringify(['EVENT', subId, ev]));
    }
    ws.send(JSON.stringify(['EOSE', subId]));
  }

  function deliver(ev: NostrEvent): void {
    for (const [ws, subs] of subscriptions) {
      for (const [subId, filters] of subs) if (matchFilters(filters, ev)) ws.send(JSON.stringify(['EVENT', subId, ev]));
    }
  }

  if (!opts.startDown) await relay.start();
  t.teardown(async () => {
    closedForGood = true;
    await relay.stop();
  });
  return relay;
}

/** Takes every event: OK true (a repeat gets `duplicate:`), after `delayMs` if given. */
export const healthyRelay = (t: Teardown, name = 'healthy', delayMs = 0) =>
  startTestRelay(t, { name, react: () => ({ ok: true, message: '', delayMs }) });

/** Refuses every event with OK false "blocked: …". */
export const blockingRelay = (t: Teardown, name = 'blocking') =>
  startTestRelay(t, {
    name,
    react: () => ({ ok: false, message: 'blocked: this relay only takes events from its members' }),
  });

/** Accepts connections and EVENTs but never answers. */
export const silentRelay = (t: Teardown, name = 'silent') => startTestRelay(t, { name, react: () => 'silent' });

/** Drops the connection on the first EVENT and stays down `downMs`, then takes everything. */
export const droppingRelay = (t: Teardown, downMs: number, name = 'dropping') =>
  startTestRelay(t, {
    name,
    react: (_ev, n) => (n === 0 ? 'drop' : { ok: true, message: '' }),
    downAfterDropMs: downMs,
  });

/** Down (nothing listening on its port) until the test calls start(); then takes everything. */
export const downThenUpRelay = (t: Teardown, name = 'down-then-up') => startTestRelay(t, { name, startDown: true });
