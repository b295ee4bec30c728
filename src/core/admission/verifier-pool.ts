// Signature verification beside the main thread. A Schnorr check costs 0.3–0.6 ms here, about half of what an
// admission costs the main thread; on worker threads it runs on the other cores while the main thread parses,
// answers and writes. The checks asked for in one event-loop turn go to a thread as ONE message, so the hop
// costs a postMessage per batch, not per event. A thread that dies has its batches verified on the main thread
// and is replaced; nothing is ever accepted without a verdict.
import { Worker } from 'node:worker_threads';
import * as nip01 from '../../nips/nip01.js';
import { failWith, ok, type Rejection, type Result } from '../../nips/result.js';
import type { Logger } from '../../log.js';

export type Verify = (ev: nip01.NostrEvent) => Promise<Result<nip01.VerifiedEvent>>;

export interface VerifyRequest {
  readonly batch: number;
  readonly events: readonly nip01.NostrEvent[];
}

export type VerifyReply =
  | { readonly ready: true }
  | { readonly failed: string }
  | { readonly batch: number; readonly verdicts: readonly (Rejection | null)[] };

export interface VerifierPool {
  readonly verify: Verify;
  readonly threads: number;
  /** Waits for the batches in flight, then stops the threads. Later calls verify on the main thread. */
  close(): Promise<void>;
}

/** Verification on the calling thread: the pool's fallback, and the whole story with VERIFY_THREADS=0. */
export const verifyHere: Verify = async (ev) => nip01.verifySignature(ev);

interface Pending {
  readonly ev: nip01.NostrEvent;
  readonly resolve: (r: Result<nip01.VerifiedEvent>) => void;
}

interface Thread {
  readonly worker: Worker;
  readonly batches: Map<number, readonly Pending[]>;
  inFlight: number;
}

/** The largest batch one message carries: big enough to amortise the hop, small enough to spread over threads. */
const MAX_BATCH = 256;

const defaultWorkerUrl = new URL(`./verify-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** What a thread is started with. */
export interface VerifyWorkerData {
  /** The backend the main thread loaded: a thread checks signatures the same way, or does not start. */
  readonly backend: nip01.VerifierBackend;
}

/** From source (tests, `npm run dev`) a thread does not inherit tsx's hooks: it registers them, then loads. */
function startWorker(url: URL, workerData: VerifyWorkerData): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

export interface VerifierPoolOptions {
  readonly threads: number;
  readonly log: Logger;
  /** The signature backend nip01.initVerifier() loaded on this thread. */
  readonly backend: nip01.VerifierBackend;
  /**
   * With the native backend, turns that ask for at most this many checks verify them here (default 0: never): a
   * check (~60 µs) costs less than the two thread wake-ups of a hop, each of which waits for a core when the
   * machine is busy; the threads then take only the large batches of a saturated turn. With nostr-wasm (~300 µs a
   * check) every check goes to the threads.
   */
  readonly inlineUpTo?: number;
  /** The thread's script; tests replace it with one that dies. */
  readonly workerUrl?: URL;
}

export async function createVerifierPool(opts: VerifierPoolOptions): Promise<VerifierPool> {
  const { log, workerUrl = defaultWorkerUrl } = opts;
  const inlineUpTo = opts.backend === 'native' ? (opts.inlineUpTo ?? 0) : 0;
  if (opts.threads <= 0) return { verify: verifyHere, threads: 0, close: async () => {} };

  const threads: Thread[] = [];
  let queue: Pending[] = [];
  let flushScheduled = false;
  let nextBatch = 0;
  let closing = false;
  let drained: (() => void) | undefined;

  const inFlightTotal = () => threads.reduce((n, t) => n + t.inFlight, 0);

  function settle(p: Pending, verdict: Rejection | null): void {
    // The thread checked its own structured clone of `p.ev`; the object handed on is the main thread's copy.
    p.resolve(verdict ? failWith(verdict) : ok(p.ev as nip01.VerifiedEvent));
  }

  function verifyLocally(batch: readonly Pending[]): void {
    for (const p of batch) p.resolve(nip01.verifySignature(p.ev));
  }

  function onReply(thread: Thread, reply: VerifyReply): void {
    if (!('batch' in reply)) return;
    const batch = thread.batches.get(reply.batch);
    if (!batch) return;
    thread.batches.delete(reply.batch);
    thread.inFlight -= batch.length;
    if (thread.inFlight === 0) thread.worker.unref();
    batch.forEach((p, i) => settle(p, reply.verdicts[i] ?? null));
    if (drained && inFlightTotal() === 0) drained();
  }

  function onDeath(thread: Thread, why: unknown): void {
    const at = threads.indexOf(thread);
    if (at < 0) return;
    threads.splice(at, 1);
    const orphans = [...thread.batches.values()];
    thread.batches.clear();
    thread.inFlight = 0;
    if (!closing)
      log.error(
        { err: why, orphanBatches: orphans.length },
        'a signature verifier thread died; its events are verified on the main thread',
      );
    for (const batch of orphans) verifyLocally(batch);
    if (drained && inFlightTotal() === 0) drained();
    if (closing) return;
    void spawn().then(
      // a replacement that became ready after close began would otherwise outlive the pool
      (t) => (closing ? void t.worker.terminate() : threads.push(t)),
      (err: unknown) => log.error({ err }, 'could not replace a signature verifier thread'),
    );
  }

  function spawn(): Promise<Thread> {
    return new Promise((resolve, reject) => {
      const worker = startWorker(workerUrl, { backend: opts.backend });
      const thread: Thread = { worker, batches: new Map(), inFlight: 0 };
      let started = false;
      worker.on('message', (reply: VerifyReply) => {
        if (started) return onReply(thread, reply);
        if ('failed' in reply) return reject(new Error(`verifier thread: ${reply.failed}`));
        if (!('ready' in reply)) return;
        started = true;
        worker.unref();
        resolve(thread);
      });
      worker.on('error', (err) => (started ? onDeath(thread, err) : reject(err)));
      worker.on('exit', (code) => {
        if (!started) return reject(new Error(`verifier thread exited with code ${code} before it was ready`));
        onDeath(thread, new Error(`verifier thread exited with code ${code}`));
      });
    });
  }

  function leastBusy(): Thread | undefined {
    let best: Thread | undefined;
    for (const t of threads) if (!best || t.inFlight < best.inFlight) best = t;
    return best;
  }

  function send(batch: Pending[]): void {
    const thread = leastBusy();
    if (!thread) return verifyLocally(batch);
    const id = nextBatch++;
    thread.batches.set(id, batch);
    if (thread.inFlight === 0) thread.worker.ref(); // an awaited verdict keeps the process alive
    thread.inFlight += batch.length;
    thread.worker.postMessage({ batch: id, events: batch.map((p) => p.ev) } satisfies VerifyRequest);
  }

  function flush(): void {
    flushScheduled = false;
    const all = queue;
    queue = [];
    if (all.length <= inlineUpTo) return verifyLocally(all);
    const size = Math.min(MAX_BATCH, Math.ceil(all.length / Math.max(1, threads.length)));
    for (let i = 0; i < all.length; i += size) send(all.slice(i, i + size));
  }

  const started = await Promise.all(Array.from({ length: opts.threads }, spawn));
  threads.push(...started);

  const verify: Verify = (ev) => {
    if (closing) return verifyHere(ev);
    // The thread verifies its own clone; what is handed on must not change after the verdict either.
    const copy = nip01.copyEvent(ev);
    return new Promise((resolve) => {
      queue.push({ ev: copy, resolve });
      if (flushScheduled) return;
      flushScheduled = true;
      setImmediate(flush); // after this turn's I/O callbacks: every message read in this turn shares the batch
    });
  };

  async function close(): Promise<void> {
    if (closing) return;
    if (flushScheduled) flush();
    closing = true;
    if (inFlightTotal() > 0) await new Promise<void>((resolve) => (drained = resolve));
    await Promise.all(threads.splice(0).map((t) => t.worker.terminate()));
  }

  return { verify, threads: opts.threads, close };
}
