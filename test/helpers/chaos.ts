// Shared parts of the fault suite (test/chaos/): the fast/long switch, the figures each scenario prints, and a
// steady publishing load whose every answer is kept with its timing.
//   npm test        the fast variant of each scenario (short outages, fewer events): structural facts asserted
//   npm run chaos   CHAOS=full: the long variants, and the time targets of issue #18 asserted too
// Figures are printed as tap comments (`# figures <scenario> {...}`) and, when CHAOS_FIGURES names a file, appended
// to it as JSON lines (docs/faults.md is written from them).
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { WebSocket } from 'ws';
import { buildEvent, newKey, type Key } from './events.js';
import { rawText } from '../../src/lib/ws-text.js';

export const full = process.env.CHAOS === 'full';

/** The fast value in `npm test`, the long one in `npm run chaos`. */
export function scale<T>(fast: T, long: T): T {
  return full ? long : fast;
}

interface Commenter {
  comment(...args: unknown[]): void;
}

export function figures(t: Commenter, scenario: string, values: Record<string, unknown>): void {
  const line = JSON.stringify({ scenario, ...values });
  t.comment(`figures ${line}`);
  const file = process.env.CHAOS_FIGURES;
  if (!file) return;
  mkdirSync(path.dirname(file), { recursive: true });
  appendFileSync(file, `${line}\n`);
}

export interface Answer {
  readonly id: string;
  readonly sentAt: number;
  answeredAt?: number;
  ok?: boolean;
  message?: string;
}

export interface Load {
  readonly answers: Answer[];
  /** Stops sending and waits (at most `waitMs`) for the answers still due. */
  stop(waitMs?: number): Promise<void>;
  /** Answers to events sent at or after `since` (ms epoch). */
  since(since: number): Answer[];
}

export interface LoadOptions {
  /** Connections, each sending one EVENT every `everyMs` without waiting for the answers (bounded by `maxEvents`). */
  readonly clients: number;
  readonly everyMs: number;
  readonly maxEvents: number;
  /** The author of the n-th event; default: a new author every other event (the account path), else one fixed. */
  readonly author?: (n: number) => Key;
}

/** Opens `clients` connections to a relay and publishes at a steady rate until stopped. */
export async function startLoad(relayUrl: string, opts: LoadOptions): Promise<Load> {
  const answers: Answer[] = [];
  const byId = new Map<string, Answer>();
  const fixed = newKey();
  const author = opts.author ?? ((n: number) => (n % 2 === 0 ? newKey() : fixed));
  let sent = 0;
  let stopped = false;
  const sockets = await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      const ws = new WebSocket(relayUrl);
      ws.on('error', () => undefined);
      ws.on('message', (data) => {
        const m = JSON.parse(rawText(data)) as unknown[];
        if (m[0] !== 'OK') return;
        const a = byId.get(String(m[1]));
        if (!a || a.answeredAt !== undefined) return;
        a.answeredAt = Date.now();
        a.ok = m[2] === true;
        a.message = String(m[3]);
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      return ws;
    }),
  );
  const timers = sockets.map((ws, i) =>
    setInterval(() => {
      if (stopped || sent >= opts.maxEvents || ws.readyState !== WebSocket.OPEN) return;
      const ev = buildEvent(author(sent).sk, { content: `load ${i} ${sent}` });
      sent++;
      const a: Answer = { id: ev.id, sentAt: Date.now() };
      answers.push(a);
      byId.set(ev.id, a);
      ws.send(JSON.stringify(['EVENT', ev]));
    }, opts.everyMs),
  );
  return {
    answers,
    since: (since) => answers.filter((a) => a.sentAt >= since),
    async stop(waitMs = 30_000) {
      stopped = true;
      for (const timer of timers) clearInterval(timer);
      const until = Date.now() + waitMs;
      while (answers.some((a) => a.answeredAt === undefined) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      for (const ws of sockets) ws.close();
    },
  };
}

/** Latency figures of a set of answers (ms): the unanswered ones are counted apart. */
export function latencies(answers: readonly Answer[]): {
  events: number;
  unanswered: number;
  p50: number;
  p99: number;
  max: number;
} {
  const ms = answers.filter((a) => a.answeredAt !== undefined).map((a) => (a.answeredAt as number) - a.sentAt);
  ms.sort((x, y) => x - y);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0;
  return {
    events: answers.length,
    unanswered: answers.length - ms.length,
    p50: at(0.5),
    p99: at(0.99),
    max: ms.at(-1) ?? 0,
  };
}
