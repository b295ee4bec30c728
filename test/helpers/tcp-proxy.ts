// A TCP proxy on a loopback port in front of a real service (the machine's PostgreSQL or Redis), for the fault
// tests: the service under test connects through it, and the test decides what the network does. Nothing is done to
// the real server itself; every fault lives here.
//   pass       bytes flow both ways
//   cut()      every connection is reset (RST) and the port refuses new ones: the server is gone
//   slow(ms)   bytes flow, each chunk delayed by ms, in order: the server (or the path) is slow
//   halfOpen() connections stay open and new ones are accepted, but no byte goes anywhere: a peer that vanished
//              without a FIN or RST (a crashed host, a partition). Connections made during it stay dead after
//              restore(), as behind a NAT that forgot them, so the client has to notice by itself.
//   restore()  back to pass, on the same port
import net from 'node:net';
import type { AddressInfo } from 'node:net';

interface Teardown {
  teardown(fn: () => unknown): void;
}

type ProxyMode = 'pass' | 'cut' | 'slow' | 'half-open';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections accepted since the start. */
  readonly accepted: number;
  /** Connections open now (client side). */
  open(): number;
  cut(): Promise<void>;
  slow(delayMs: number): Promise<void>;
  halfOpen(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Made while half-open, or caught in it: stays silent for good. */
  dead: boolean;
}

/** Starts a proxy to host:port on 127.0.0.1 (a free port), closed at teardown. */
export async function startTcpProxy(t: Teardown, target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let mode: ProxyMode = 'pass';
  let delayMs = 0;
  let accepted = 0;
  let server: net.Server | undefined;
  let boundPort = 0;

  /** Forwards one direction: now, after the delay (in order, one queue per direction), or never. */
  function relay(pair: Pair, from: net.Socket, to: net.Socket): void {
    let last = 0;
    from.on('data', (chunk: Buffer) => {
      if (pair.dead || mode === 'half-open') {
        pair.dead = true;
        return;
      }
      // never before a chunk ahead of it that is still delayed (after slow, a restore must not reorder the stream)
      if (mode !== 'slow' && last <= Date.now()) {
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
        return;
      }
      const at = Math.max(Date.now() + (mode === 'slow' ? delayMs : 0), last);
      last = at;
      setTimeout(() => {
        if (!pair.dead && !to.destroyed) to.write(chunk);
      }, at - Date.now());
    });
  }

  function onConnection(client: net.Socket): void {
    accepted++;
    const pair: Pair = { client, upstream: net.connect(target.port, target.host), dead: mode === 'half-open' };
    pairs.add(pair);
    for (const s of [pair.client, pair.upstream]) {
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => {
        pairs.delete(pair);
        // a closed side closes the other (unless the pair is dead: then nothing at all reaches the client)
        if (!pair.dead) {
          pair.client.destroy();
          pair.upstream.destroy();
        } else if (s === pair.client) pair.upstream.destroy();
      });
    }
    relay(pair, pair.client, pair.upstream);
    relay(pair, pair.upstream, pair.client);
  }

  async function listen(): Promise<void> {
    if (server) return;
    const s = net.createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(boundPort, '127.0.0.1', () => resolve());
    });
    server = s;
    boundPort = (s.address() as AddressInfo).port;
  }

  async function unlisten(): Promise<void> {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  function resetAll(): void {
    for (const p of pairs) {
      p.dead = true;
      p.client.resetAndDestroy();
      p.upstream.destroy();
    }
    pairs.clear();
  }

  await listen();
  const proxy: TcpProxy = {
    port: boundPort,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    open: () => pairs.size,
    async cut() {
      mode = 'cut';
      const closing = unlisten();
      resetAll();
      await closing;
    },
    async slow(ms) {
      await listen();
      mode = 'slow';
      delayMs = ms;
    },
    async halfOpen() {
      await listen();
      mode = 'half-open';
    },
    async restore() {
      mode = 'pass';
      await listen();
    },
    async close() {
      mode = 'cut';
      const closing = unlisten();
      resetAll();
      await closing;
    },
  };
  t.teardown(() => proxy.close());
  return proxy;
}

/** A PostgreSQL URL with its host and port replaced by the proxy's (same user, database and options). */
export function throughProxy(url: string, proxy: { port: number }): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}
