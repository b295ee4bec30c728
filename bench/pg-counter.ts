// Counts what the service asks PostgreSQL, on the wire: a TCP proxy on 127.0.0.1 between the service and the
// server that forwards every byte unchanged and reads the client's side of the protocol as it passes. The server
// here has no pg_stat_statements (it is not in shared_preload_libraries, and the shared server is not restarted
// for a benchmark), and knex's 'query' event misses the statements the store runs as named prepared statements;
// the wire sees them all. Runs on a thread of its own (bench/pg-counter-worker.ts), so its work is not the load
// generator's.
//
// Per client message (PostgreSQL frontend protocol 3): 'Q' a simple query (one statement, one round trip), 'P' a
// parse (a statement planned; a named one is parsed once per connection), 'E' an execute (one statement), 'S' a
// sync (the end of an extended-protocol round trip). Statements are grouped by their text (named ones by name).
import net from 'node:net';

export interface WireCounts {
  /** Statements executed: simple queries plus extended-protocol executes. */
  statements: number;
  /** Client waits for the server: simple queries plus syncs. */
  roundTrips: number;
  /** Statements parsed by the server (named ones once per connection, unnamed ones every time). */
  parses: number;
  /** Connections opened to the server through the proxy. */
  connections: number;
  /** The server's ReadyForQuery messages: one after each connection's start-up and one per round trip. */
  answered: number;
  /** Statements executed, by statement (its name, or the start of its text). */
  byStatement: Record<string, number>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
/** Bytes of a Bind message read: its portal and statement names come first, the parameters after. */
const BIND_PREFIX = 256;

function emptyCounts(): WireCounts {
  return { statements: 0, roundTrips: 0, parses: 0, connections: 0, answered: 0, byStatement: {} };
}

/** The label a statement is counted under: its name when it has one, else its text, shortened and on one line. */
function label(name: string, text: string | undefined): string {
  if (name) return name;
  const flat = (text ?? '?').replace(/\s+/g, ' ').trim();
  return flat.length > 90 ? `${flat.slice(0, 90)}…` : flat;
}

function cstrings(body: Buffer, n: number): string[] {
  const out: string[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const end = body.indexOf(0, at);
    if (end < 0) break;
    out.push(body.toString('utf8', at, end));
    at = end + 1;
  }
  return out;
}

/** What the two directions of one connection share: the one-byte answers owed to SSL/GSS requests. */
interface Connection {
  oneByteAnswers: number;
}

/**
 * A stream reader that passes over whole messages without holding them: `next` looks at the start of what is
 * unread and returns how many bytes the message there takes (from its header, after reading what it needs of it),
 * or undefined when more bytes must come first. Only an unfinished header is kept between chunks, never a body.
 */
function messageReader(next: (buf: Buffer) => number | undefined): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let skip = 0; // bytes of the current message still to pass without reading
  return (chunk) => {
    let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length);
        skip -= n;
        buf = buf.subarray(n);
        if (skip > 0) break;
      }
      const size = next(buf);
      if (size === undefined) break;
      skip = size;
    }
    pending = Buffer.from(buf); // a copy: the rest of a partly read header
  };
}

/** Reads one connection's server-to-client stream for its ReadyForQuery messages ('Z'). */
function serverReader(counts: WireCounts, conn: Connection): (chunk: Buffer) => void {
  return messageReader((buf) => {
    if (conn.oneByteAnswers > 0 && buf.length > 0) {
      conn.oneByteAnswers--;
      return 1;
    }
    if (buf.length < 5) return undefined;
    if (buf[0] === 0x5a) counts.answered++;
    return 1 + buf.readInt32BE(1);
  });
}

/** Reads one connection's client-to-server stream, message by message, without holding large messages. */
function clientReader(counts: WireCounts, conn: Connection): (chunk: Buffer) => void {
  const statements = new Map<string, string>(); // prepared statement name → text ('' = the unnamed one)
  let bound = '';
  let startup = true;

  const count = (key: string): void => {
    counts.statements++;
    counts.byStatement[key] = (counts.byStatement[key] ?? 0) + 1;
  };

  function handle(type: number, body: Buffer): void {
    switch (String.fromCharCode(type)) {
      case 'Q':
        counts.roundTrips++;
        count(label('', cstrings(body, 1)[0]));
        break;
      case 'P': {
        const [name = '', text = ''] = cstrings(body, 2);
        counts.parses++;
        statements.set(name, text);
        break;
      }
      case 'B':
        bound = cstrings(body, 2)[1] ?? '';
        break;
      case 'E':
        count(label(bound, statements.get(bound)));
        break;
      case 'S':
        counts.roundTrips++;
        break;
    }
  }

  return messageReader((buf) => {
    if (startup) {
      // untyped: length, then a protocol version or an SSL/GSS request (answered by one byte, then a startup)
      if (buf.length < 8) return undefined;
      const code = buf.readInt32BE(4);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) conn.oneByteAnswers++;
      else startup = false;
      return buf.readInt32BE(0);
    }
    if (buf.length < 5) return undefined;
    const type = buf[0]!;
    const len = buf.readInt32BE(1); // counts itself, not the type byte
    const wanted = type === 0x51 || type === 0x50 ? len - 4 : type === 0x42 ? Math.min(len - 4, BIND_PREFIX) : 0; // Q, P whole; B its start
    if (buf.length < 5 + wanted) return undefined;
    handle(type, buf.subarray(5, 5 + wanted));
    return 1 + len;
  });
}

export interface WireCounter {
  readonly port: number;
  snapshot(): WireCounts;
  /** Round trips sent and not answered yet (connections still starting up included): 0 when all is quiet. */
  inFlight(): number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (a free port) and forwards every connection to the server at `target`. */
export async function startWireCounter(target: { host: string; port: number }): Promise<WireCounter> {
  const counts = emptyCounts();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    counts.connections++;
    const upstream = net.connect(target.port, target.host);
    const conn: Connection = { oneByteAnswers: 0 };
    const read = clientReader(counts, conn);
    const readAnswer = serverReader(counts, conn);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => {
      read(chunk);
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      readAnswer(chunk);
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    snapshot: () => ({ ...counts, byStatement: { ...counts.byStatement } }),
    inFlight: () => counts.roundTrips + counts.connections - counts.answered,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What happened between two snapshots. */
export function countsBetween(before: WireCounts, after: WireCounts): WireCounts {
  const byStatement: Record<string, number> = {};
  for (const [k, n] of Object.entries(after.byStatement)) {
    const d = n - (before.byStatement[k] ?? 0);
    if (d > 0) byStatement[k] = d;
  }
  return {
    statements: after.statements - before.statements,
    roundTrips: after.roundTrips - before.roundTrips,
    parses: after.parses - before.parses,
    connections: after.connections - before.connections,
    answered: after.answered - before.answered,
    byStatement,
  };
}
