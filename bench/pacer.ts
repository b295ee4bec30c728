// How the benchmark's clients send: `count` messages over their connections, at most `inflight` unanswered on each,
// optionally no faster than `ratePerSecond` over all, and never past `maxSeconds` (then 5 s more for the answers
// still due). The caller sends message i in `send` and reports each answer with `answered(ws)`; `done` resolves
// when every message sent is answered and no more is due (or at the safety stop). Shared by the publishing client
// (bench/publish.ts) and the reading one (bench/reads.ts).
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';

export interface PaceOptions {
  readonly count: number;
  readonly inflight: number;
  readonly ratePerSecond?: number;
  readonly maxSeconds: number;
}

export interface Pacer {
  /** One answer came on `ws`: its slot is free for the next message. */
  answered(ws: WebSocket): void;
  /** Messages sent so far. */
  sent(): number;
  /** Seconds since the first message. */
  seconds(): number;
  readonly done: Promise<void>;
}

export function pace(
  conns: readonly WebSocket[],
  opts: PaceOptions,
  send: (ws: WebSocket, i: number) => void,
  tickMs = 5,
): Pacer {
  const inflight = new Map<WebSocket, number>();
  const started = performance.now();
  const deadline = started + opts.maxSeconds * 1000;
  let next = 0;
  let answers = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  const due = (): boolean => next < opts.count && performance.now() <= deadline;
  const sendOne = (ws: WebSocket): boolean => {
    if (!due()) return false;
    if (opts.ratePerSecond && next >= ((performance.now() - started) / 1000) * opts.ratePerSecond) return false;
    inflight.set(ws, (inflight.get(ws) ?? 0) + 1);
    send(ws, next++);
    return true;
  };
  const pump = (ws: WebSocket) => {
    while ((inflight.get(ws) ?? 0) < opts.inflight && sendOne(ws));
  };
  const finish = () => {
    if (answers < next || due()) return;
    clearInterval(ticker);
    resolveDone();
  };
  // paced sending, and a safety stop for answers that never come
  const ticker = setInterval(() => {
    for (const ws of conns) pump(ws);
    if (performance.now() > deadline + 5000) {
      clearInterval(ticker);
      resolveDone();
    }
    finish();
  }, tickMs);
  for (const ws of conns) pump(ws);

  return {
    answered(ws) {
      answers++;
      inflight.set(ws, (inflight.get(ws) ?? 1) - 1);
      pump(ws);
      finish();
    },
    sent: () => next,
    seconds: () => (performance.now() - started) / 1000,
    done,
  };
}
