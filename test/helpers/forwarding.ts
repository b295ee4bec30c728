// Helpers for the forwarding tests: the test configuration (small timeouts and backoffs), reading the outbox as a
// test sees it, putting a user on a paid plan, and running the service in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Knex } from 'knex';
import { patientLimits } from './limits.js';
import { waitFor } from './wait-for.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Forwarding settings for tests: loopback upstreams allowed, short timeouts, small backoffs. */
export const forwardTestEnv: Record<string, string> = {
  ALLOW_PRIVATE_RELAYS: 'true',
  FORWARD_TIMEOUT_MS: '1000',
  FORWARD_BACKOFF_BASE_MS: '200',
  FORWARD_BACKOFF_MAX_MS: '5000',
  FORWARD_MAX_ATTEMPTS: '4',
  FORWARD_POLL_MS: '200',
  FORWARD_CIRCUIT_FAILURES: '50',
  FORWARD_CIRCUIT_PAUSE_MS: '1000',
  // No kind counts against the daily quota, so tests may publish as many notes as they like on the basic plan.
  POST_KINDS: '40000',
};

export interface LogEntry {
  attempt: number;
  worker?: string;
  outcome: string;
  status?: string;
  started_at?: string;
  finished_at?: string;
  transitions?: { status: string; at: string }[];
  retry_in_ms?: number;
  error_code: string | null;
  error_message?: string | null;
  relay_response?: unknown;
}

export interface PublishRow {
  id: string;
  event_id: string;
  relay_url: string;
  user_relay_id: string | null;
  status: string;
  attempts: number;
  connection_time_ms: number | null;
  publish_time_ms: number | null;
  total_time_ms: number | null;
  relay_response: unknown;
  error_code: string | null;
  error_message: string | null;
  attempted_at: Date | null;
  completed_at: Date | null;
  claimed_by: string | null;
  attempt_log: LogEntry[];
}

/** The outbox rows of events (by Nostr event id), with the event id in place of the row id. */
export async function publishRows(db: Knex, eventIds: string | readonly string[]): Promise<PublishRow[]> {
  const ids = typeof eventIds === 'string' ? [eventIds] : [...eventIds];
  return (await db('relay_publishes as p')
    .join('nostr_events as e', 'e.id', 'p.event_id')
    .whereIn('e.event_id', ids)
    .orderBy([{ column: 'e.event_id' }, { column: 'p.relay_url' }])
    .select(
      'p.id',
      'e.event_id',
      'p.relay_url',
      'p.user_relay_id',
      'p.status',
      'p.attempts',
      'p.connection_time_ms',
      'p.publish_time_ms',
      'p.total_time_ms',
      'p.relay_response',
      'p.error_code',
      'p.error_message',
      'p.attempted_at',
      'p.completed_at',
      'p.claimed_by',
      'p.attempt_log',
    )) as PublishRow[];
}

const finalStatuses = new Set(['published', 'rejected', 'failed', 'timeout']);

/** Waits until every outbox row of these events is final (and there is at least one per event). */
export async function waitForFinal(db: Knex, eventIds: readonly string[], timeoutMs = 15_000): Promise<PublishRow[]> {
  return waitFor(
    `the outbox rows of ${eventIds.length} event(s) to be final`,
    async () => {
      const rows = await publishRows(db, eventIds);
      const events = new Set(rows.map((r) => r.event_id));
      return events.size === eventIds.length && rows.every((r) => finalStatuses.has(r.status)) ? rows : undefined;
    },
    timeoutMs,
  );
}

export async function eventRow(db: Knex, eventId: string): Promise<Record<string, unknown>> {
  return (await db('nostr_events').where({ event_id: eventId }).first('*')) as Record<string, unknown>;
}

/** Creates the user for this pubkey (if needed) with an active subscription to `plan`; returns the user id. */
export async function subscribeUser(db: Knex, pubkey: string, plan: string): Promise<string> {
  await db('users').insert({ nostr_public_key: pubkey }).onConflict('nostr_public_key').ignore();
  const user = (await db('users').where({ nostr_public_key: pubkey }).first('id')) as { id: string };
  const p = (await db('subscription_plans').where({ plan_code: plan }).first('id', 'price_monthly')) as {
    id: string;
    price_monthly: string;
  };
  await db('user_subscriptions').insert({
    user_id: user.id,
    plan_id: p.id,
    status: 'active',
    amount: p.price_monthly,
    current_period_end: db.raw(`now() + interval '30 days'`),
  });
  return user.id;
}

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly relayUrl: string;
  readonly workerId: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
}

/** Starts `node --import tsx test/helpers/service-process.ts` with this environment; stopped at teardown. */
export async function startServiceProcess(t: Teardown, env: Record<string, string>): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/service-process.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      ...patientLimits,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  });
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ relayUrl: string; workerId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the service process did not start within 60 s')), 60_000);
    child.once('exit', (code) => reject(new Error(`the service process exited with ${code} before it was ready`)));
    lines.on('line', (line) => {
      try {
        const m = JSON.parse(line) as { ready?: boolean; relayUrl: string; workerId: string };
        if (m.ready) {
          clearTimeout(timer);
          resolve(m);
        }
      } catch {
        // a log line (shown when the tests run with TEST_LOG_LEVEL)
      }
      if (process.env.TEST_LOG_LEVEL && !line.includes('"ready":true'))
        process.stderr.write(`[child ${child.pid}] ${line}\n`);
    });
  });
  return { child, relayUrl: ready.relayUrl, workerId: ready.workerId, exited };
}
