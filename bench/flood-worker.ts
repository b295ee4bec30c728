// The flooding client of the flood scenario, on a thread of its own: the bystanders' latency is then measured by
// an event loop the flood does not keep busy, so it shows what the service does to them, not what the load
// generator does. Posts the flood's counts back when every event is answered (or the time is up).
import { parentPort, workerData } from 'node:worker_threads';
import type { NostrEvent } from 'nostr-tools/pure';
import { connectTo, publishOn } from './publish.js';

export interface FloodJob {
  readonly port: number;
  readonly events: NostrEvent[];
  readonly connections: number;
  readonly inflight: number;
  readonly maxSeconds: number;
  /** Sent at this rate instead of as fast as answers come (the flood's control, paced like the real flood). */
  readonly ratePerSecond?: number;
}

const job = workerData as FloodJob;
const conns = await Promise.all(Array.from({ length: job.connections }, () => connectTo(job.port)));
const r = await publishOn(conns, job.events, {
  inflight: job.inflight,
  maxSeconds: job.maxSeconds,
  ...(job.ratePerSecond ? { ratePerSecond: job.ratePerSecond } : {}),
});
for (const ws of conns) ws.close();
parentPort?.postMessage({ accepted: r.accepted, rejected: r.rejected, seconds: r.seconds, reasons: r.reasons });
