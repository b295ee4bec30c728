// The WebSocket face: takes HTTP upgrades on the relay's path itself (ws in noServer mode), so connection
// limits answer with an HTTP status before the handshake, then hands each socket to a Connection.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { FanOut } from '../core/events/index.js';
import { Connection, type ConnectionDeps } from './connection.js';
import { SubscriptionIndex } from './subscriptions.js';

export interface RelayServerOptions extends Omit<ConnectionDeps, 'subscriptions'> {
  readonly fanout: FanOut;
  readonly path: string;
  readonly maxConnectionsPerIp: number;
  /** The client address: the socket's, or the first X-Forwarded-For hop when behind a trusted proxy. */
  readonly clientIp: (req: IncomingMessage) => string;
  readonly onDelivered?: (n: number) => void;
}

export interface RelayServer {
  readonly subscriptions: SubscriptionIndex;
  connectionCount(): number;
  /**
   * Stops taking connections and messages, waits (at most `drainMs`) until every message already received has
   * been answered, then closes the connections with `code`.
   */
  close(code?: number, reason?: string, drainMs?: number): Promise<void>;
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

export function attachRelay(http: Server, opts: RelayServerOptions): RelayServer {
  const subscriptions = new SubscriptionIndex();
  // A hard cap well above the advertised limit: messages between the two get a NOTICE naming the limit
  // (Connection), only absurd ones close the socket (1009).
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.limits.maxMessageBytes * 4,
    perMessageDeflate: false,
  });
  const connections = new Set<Connection>();
  const perIp = new Map<string, number>();
  let accepting = true;

  const stopListening = opts.fanout.subscribe(({ event, json }) => {
    const n = subscriptions.dispatch(event, json);
    if (n > 0) opts.onDelivered?.(n);
  });

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== opts.path) return refuse(socket, 404, 'Not Found');
    if (!accepting) return refuse(socket, 503, 'Service Unavailable');
    const ip = opts.clientIp(req);
    const open = perIp.get(ip) ?? 0;
    if (open >= opts.maxConnectionsPerIp) return refuse(socket, 429, 'Too Many Requests');
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
      const conn = new Connection(ws, ip, { ...opts, subscriptions });
      connections.add(conn);
      ws.on('close', () => {
        connections.delete(conn);
        const n = (perIp.get(ip) ?? 1) - 1;
        if (n <= 0) perIp.delete(ip);
        else perIp.set(ip, n);
      });
    });
  }
  http.on('upgrade', onUpgrade);

  return {
    subscriptions,
    connectionCount: () => connections.size,
    async close(code = 1001, reason = 'server shutting down', drainMs = 5000) {
      accepting = false;
      http.off('upgrade', onUpgrade);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)));
      await Promise.race([Promise.all([...connections].map((c) => c.drain())), timeout]);
      clearTimeout(timer);
      stopListening();
      for (const c of connections) c.close(code, reason);
      // A client that never answers our close frame would hold shutdown for ws's 30 s close timeout.
      const hard = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
      }, 1000);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      clearTimeout(hard);
    },
  };
}
