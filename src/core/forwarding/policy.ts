// The forwarding rules, pure: what an upstream relay's answer (or silence, or failure) means for an outbox row,
// and when a transient failure is retried (exponential backoff with jitter, bounded by attempts and age).
import type { FinalStatus } from '../../store/outbox.js';
import type { PublishReport } from './upstream-pool.js';

/** What an attempt's result means for its row, decided by classify(). */
export interface Decision {
  readonly status: FinalStatus | 'pending';
  readonly retryInMs?: number;
  /** The attempt_log / metrics label. */
  readonly outcome:
    'published' | 'rejected' | 'retry' | 'failed' | 'timeout' | 'interrupted' | 'expired' | 'not_forwarded';
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  /** For the circuit breaker: the relay answered ('ok'), failed in a way that says it is unwell ('fail'), or neither. */
  readonly health: 'ok' | 'fail' | 'none';
}

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly maxAgeSeconds: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

/**
 * Delay before the retry that follows attempt `attempt` (1-based): base · 2^(attempt-1), capped at max, minus up to
 * 25% jitter. Below the cap every delay is longer than the one before, whatever the jitter (the next one is at
 * least 1.5 times the previous one's largest value).
 */
export function backoffMs(
  attempt: number,
  p: Pick<RetryPolicy, 'backoffBaseMs' | 'backoffMaxMs'>,
  random = Math.random,
): number {
  const full = Math.min(p.backoffMaxMs, p.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(1, Math.round(full * (1 - 0.25 * random())));
}

/** OK false prefixes that are not final: the relay may take the event later. */
const transientPrefixes = new Set(['rate-limited', 'error']);

function prefixOf(message: string): string {
  const i = message.indexOf(':');
  return i > 0 ? message.slice(0, i).trim() : '';
}

/**
 * The decision for one attempt: OK true (or a `duplicate:` answer) → published; OK false → rejected (final),
 * except `rate-limited:` and `error:` which are retried like timeouts and connection failures; a refused address is
 * final; a shutdown is retried at once. A retried failure becomes final (`timeout` after a timeout, else `failed`)
 * once the attempts or the row's age are used up.
 */
export function classify(
  report: PublishReport,
  row: { attempt: number; ageSeconds: number },
  p: RetryPolicy,
  random = Math.random,
): Decision {
  const r = report.result;
  const transient = (errorCode: string, errorMessage: string): Decision => {
    const delay = backoffMs(row.attempt, p, random);
    if (row.attempt >= p.maxAttempts || row.ageSeconds + delay / 1000 >= p.maxAgeSeconds) {
      const status = errorCode === 'timeout' || errorCode === 'connect_timeout' ? 'timeout' : 'failed';
      const why =
        row.attempt >= p.maxAttempts ? `after ${row.attempt} attempts` : `after ${Math.round(row.ageSeconds)} s`;
      return { status, outcome: status, errorCode, errorMessage: `${errorMessage} (gave up ${why})`, health: 'fail' };
    }
    return { status: 'pending', retryInMs: delay, outcome: 'retry', errorCode, errorMessage, health: 'fail' };
  };
  switch (r.kind) {
    case 'answered': {
      if (r.accepted)
        return { status: 'published', outcome: 'published', errorCode: null, errorMessage: null, health: 'ok' };
      const prefix = prefixOf(r.message);
      if (prefix === 'duplicate')
        return { status: 'published', outcome: 'published', errorCode: null, errorMessage: null, health: 'ok' };
      if (transientPrefixes.has(prefix)) {
        const d = transient(prefix === 'rate-limited' ? 'rate_limited' : 'relay_error', r.message);
        return d;
      }
      return {
        status: 'rejected',
        outcome: 'rejected',
        errorCode: prefix ? prefix.slice(0, 50) : 'rejected',
        errorMessage: r.message || 'the relay refused the event',
        health: 'ok',
      };
    }
    case 'timeout':
      return transient('timeout', `no OK within the timeout after sending the event`);
    case 'connect-timeout':
      return transient('connect_timeout', 'could not connect within the timeout');
    case 'connect-failed':
      return transient('connect_failed', r.error);
    case 'dropped':
      return transient('connection_lost', r.error);
    case 'not-allowed':
      return {
        status: 'failed',
        outcome: 'failed',
        errorCode: 'address_not_allowed',
        errorMessage: r.error,
        health: 'none',
      };
    case 'shutdown':
      return {
        status: 'pending',
        retryInMs: 0,
        outcome: 'interrupted',
        errorCode: 'shutdown',
        errorMessage: 'the forwarder stopped during the attempt',
        health: 'none',
      };
  }
}
