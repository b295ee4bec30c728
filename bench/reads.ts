// The benchmark's reading client: REQ (answered up to EOSE, then closed) and COUNT requests over WebSocket
// connections to the service on 127.0.0.1, a bounded number in flight per connection and optionally at a fixed
// rate, each timed from its send to its EOSE (or COUNT answer). Answers are recognised by their opening bytes only:
// at thousands of REQs a second, decoding every EVENT would make this process the bottleneck on a 2-core machine,
// where its CPU is taken from the service's and PostgreSQL's. What it sends in one turn (a CLOSE after an EOSE, the
// next REQ) leaves in one write, as a client that batches its messages would send it.
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';
import { corkUntilNextTick } from '../src/lib/ws-cork.js';
import { latencySummary } from './common.js';
import { pace } from './pacer.js';

export type ReadRequest = { readonly verb: 'REQ' | 'COUNT'; readonly filter: Record<string, unknown> };

export interface ReadLoad {
  /** The i-th request (from 0). */
  readonly request: (i: number) => ReadRequest;
  /** Requests in all (a bound), and seconds at most (another). */
  readonly count: number;
  readonly maxSeconds: number;
  /** Unanswered requests per connection. */
  readonly inflight: number;
  /** Requests started per second over all connections; none: as fast as they are answered. */
  readonly ratePerSecond?: number;
}

export interface ReadResult {
  readonly requests: number;
  readonly answered: number;
  /** CLOSED answers (a refusal: rate-limited, too many subscriptions …), by their prefix. */
  readonly refused: Record<string, number>;
  readonly events: number;
  readonly per_s: number;
  readonly events_per_request: number;
  readonly latency_ms: ReturnType<typeof latencySummary>;
}

/** The subscription id of an answer `["VERB","id",…`, without decoding the rest. */
function subIdOf(data: Buffer, verbLength: number): string {
  const start = verbLength + 5; // [" VERB "," = 2 + verb + 3
  return data.toString('latin1', start, data.indexOf(0x22, start)); // the bench's ids are ASCII
}

/** The answer's verb, from its opening bytes (`["EVENT"`, `["EOSE"`, `["COUNT"`, `["CLOSED"`). */
function verbOf(data: Buffer): 'EVENT' | 'EOSE' | 'COUNT' | 'CLOSED' | undefined {
  if (data[2] === 0x45) return data[3] === 0x56 ? 'EVENT' : data[3] === 0x4f ? 'EOSE' : undefined; // E, V / O
  if (data[2] !== 0x43) return undefined; // C
  if (data[3] === 0x4f) return 'COUNT'; // O
  return data[3] === 0x4c && data[7] === 0x44 ? 'CLOSED' : undefined; // L … D (not CLOSE)
}

export async function readOn(conns: readonly WebSocket[], load: ReadLoad): Promise<ReadResult> {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const refused: Record<string, number> = {};
  let answered = 0;
  let events = 0;
  const pacer = pace(
    conns,
    load,
    (ws, i) => {
      const { verb, filter } = load.request(i);
      const id = `${verb === 'REQ' ? 'r' : 'c'}${i}`;
      sentAt.set(id, performance.now());
      corkUntilNextTick(ws);
      ws.send(JSON.stringify([verb, id, filter]));
    },
    2,
  );
  const done = (ws: WebSocket, id: string) => {
    const t0 = sentAt.get(id);
    if (t0 === undefined) return;
    sentAt.delete(id);
    latencies.push(performance.now() - t0);
    answered++;
    pacer.answered(ws);
  };
  for (const ws of conns) {
    ws.on('message', (data: Buffer) => {
      const verb = verbOf(data);
      if (verb === 'EVENT') events++;
      else if (verb === 'EOSE') {
        const id = subIdOf(data, 4);
        corkUntilNextTick(ws);
        ws.send(`["CLOSE","${id}"]`);
        done(ws, id);
      } else if (verb === 'COUNT') done(ws, subIdOf(data, 5));
      else if (verb === 'CLOSED') {
        const [, id, reason] = JSON.parse(data.toString()) as [string, string, string];
        if (!sentAt.has(id)) return; // closed after its EOSE: not a refusal
        const prefix = reason.split(':')[0] ?? '';
        refused[prefix] = (refused[prefix] ?? 0) + 1;
        done(ws, id);
      }
    });
  }
  await pacer.done;
  for (const ws of conns) ws.removeAllListeners('message');
  const seconds = pacer.seconds();
  return {
    requests: pacer.sent(),
    answered,
    refused,
    events,
    per_s: Math.round(answered / seconds),
    events_per_request: Math.round((events / Math.max(1, answered)) * 10) / 10,
    latency_ms: latencySummary(latencies),
  };
}
