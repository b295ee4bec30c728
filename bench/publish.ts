// The benchmark's publishing client: WebSocket connections to the service on 127.0.0.1, and pre-signed events
// sent over them with a bound on unanswered events per connection (and optionally a fixed rate), answers timed.
// Shared by bench/run.ts and the flood worker, which runs it on an event loop of its own.
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import type { NostrEvent } from 'nostr-tools/pure';
import { pace } from './pacer.js';

export function connectTo(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

export interface PublishResult {
  accepted: number;
  rejected: number;
  seconds: number;
  latenciesMs: number[];
  reasons: Record<string, number>;
}

/** Sends every event over `conns` connections, at most `inflight` unanswered per connection; optional fixed rate. */
export async function publishOn(
  conns: WebSocket[],
  events: NostrEvent[],
  opts: { inflight: number; ratePerSecond?: number; maxSeconds: number },
): Promise<PublishResult> {
  const sentAt = new Map<string, number>();
  const latenciesMs: number[] = [];
  const reasons: Record<string, number> = {};
  let accepted = 0;
  let rejected = 0;
  const pacer = pace(conns, { ...opts, count: events.length }, (ws, i) => {
    const ev = events[i]!;
    sentAt.set(ev.id, performance.now());
    ws.send(`["EVENT",${JSON.stringify(ev)}]`);
  });
  for (const ws of conns) {
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (!text.startsWith('["OK"')) return;
      const m = JSON.parse(text) as [string, string, boolean, string];
      const t0 = sentAt.get(m[1]);
      if (t0 !== undefined) {
        latenciesMs.push(performance.now() - t0);
        sentAt.delete(m[1]);
      }
      if (m[2]) accepted++;
      else {
        rejected++;
        const reason = m[3].split(':')[0] ?? '';
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
      pacer.answered(ws);
    });
  }
  await pacer.done;
  for (const ws of conns) ws.removeAllListeners('message');
  return { accepted, rejected, seconds: pacer.seconds(), latenciesMs, reasons };
}
