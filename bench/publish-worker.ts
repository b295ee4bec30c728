// A publishing client on a thread of its own, with a heap of its own: the flood of the flood scenario (its
// bystanders' latency is then measured by an event loop the flood does not keep busy) and the steady scenarios'
// timed client (the bench process holds every scenario's signed events, and its garbage collections of 15–45 ms
// would time an answer that arrives during one late by as much; this thread holds one scenario's events). Posts
// the counts back, with the latencies and this thread's event-loop delay, when every event is answered (or the time
// is up).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import type { NostrEvent } from 'nostr-tools/pure';
import { connectTo, publishOn, type PublishResult } from './publish.js';

export interface PublishJob {
  readonly port: number;
  readonly events: NostrEvent[];
  readonly connections: number;
  readonly inflight: number;
  readonly maxSeconds: number;
  /** Sent at this rate instead of as fast as answers come (the steady scenarios, the flood's control). */
  readonly ratePerSecond?: number;
}

/** What the thread posts back: the publishing result, and its own event loop's delays while publishing (ns). */
export interface PublishReport extends PublishResult {
  readonly loopDelayNs: { readonly p50: number; readonly p99: number; readonly max: number };
}

const job = workerData as PublishJob;
const conns = await Promise.all(Array.from({ length: job.connections }, () => connectTo(job.port)));
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const r = await publishOn(conns, job.events, {
  inflight: job.inflight,
  maxSeconds: job.maxSeconds,
  ...(job.ratePerSecond ? { ratePerSecond: job.ratePerSecond } : {}),
});
loop.disable();
for (const ws of conns) ws.close();
parentPort?.postMessage({
  ...r,
  loopDelayNs: { p50: loop.percentile(50), p99: loop.percentile(99), max: loop.max },
} satisfies PublishReport);
