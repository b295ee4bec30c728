// The forwarder's pure rules: what each answer or failure means for an outbox row, and the backoff schedule.
import t from 'tap';
import { backoffMs, classify, type RetryPolicy } from '../../../src/core/forwarding/policy.js';
import type { PublishReport, PublishResult } from '../../../src/core/forwarding/upstream-pool.js';

const policy: RetryPolicy = { maxAttempts: 5, maxAgeSeconds: 3600, backoffBaseMs: 1000, backoffMaxMs: 60_000 };

function report(result: PublishResult): PublishReport {
  return {
    result,
    connectionMs: 1,
    publishMs: 2,
    totalMs: 3,
    reused: false,
    remoteAddress: '127.0.0.1',
    transitions: [],
  };
}
const answered = (accepted: boolean, message: string): PublishResult => ({
  kind: 'answered',
  accepted,
  message,
  response: ['OK', 'x', accepted, message],
});
const first = { attempt: 1, ageSeconds: 1 };
const last = { attempt: 5, ageSeconds: 1 };

t.test('backoffMs', async (t) => {
  t.test('doubles per attempt from the base, with up to 25% taken off as jitter', async (t) => {
    t.same(
      [1, 2, 3, 4].map((a) => backoffMs(a, policy, () => 0)),
      [1000, 2000, 4000, 8000],
    );
    t.same(
      [1, 2, 3, 4].map((a) => backoffMs(a, policy, () => 1)),
      [750, 1500, 3000, 6000],
    );
  });
  t.test('grows strictly below the cap whatever the jitter', async (t) => {
    for (let a = 1; a < 6; a++) t.ok(backoffMs(a, policy, () => 0) < backoffMs(a + 1, policy, () => 1), `attempt ${a}`);
  });
  t.test('stops at the cap', async (t) => {
    t.equal(
      backoffMs(30, policy, () => 0),
      60_000,
    );
  });
});

t.test('classify', async (t) => {
  t.test('OK true and a duplicate answer are published, and say the relay is healthy', async (t) => {
    t.match(classify(report(answered(true, '')), first, policy), {
      status: 'published',
      outcome: 'published',
      errorCode: null,
      health: 'ok',
    });
    t.match(classify(report(answered(true, 'duplicate: have it')), first, policy), { status: 'published' });
    t.match(classify(report(answered(false, 'duplicate: have it')), first, policy), { status: 'published' });
  });

  t.test('OK false is final, with its prefix as the error code and the message kept', async (t) => {
    for (const prefix of ['invalid', 'blocked', 'pow', 'restricted', 'auth-required', 'mute']) {
      const d = classify(report(answered(false, `${prefix}: no`)), first, policy);
      t.same(
        d,
        { status: 'rejected', outcome: 'rejected', errorCode: prefix, errorMessage: `${prefix}: no`, health: 'ok' },
        prefix,
      );
    }
    t.match(classify(report(answered(false, '')), first, policy), {
      status: 'rejected',
      errorCode: 'rejected',
      errorMessage: 'the relay refused the event',
    });
  });

  t.test('rate-limited: and error: answers are retried, and count against the relay', async (t) => {
    t.match(
      classify(report(answered(false, 'rate-limited: slow down')), first, policy, () => 0),
      { status: 'pending', retryInMs: 1000, errorCode: 'rate_limited', health: 'fail' },
    );
    t.match(
      classify(report(answered(false, 'error: db down')), first, policy, () => 0),
      { status: 'pending', errorCode: 'relay_error' },
    );
    t.match(classify(report(answered(false, 'error: db down')), last, policy), {
      status: 'failed',
      outcome: 'failed',
      errorMessage: /gave up after 5 attempts/,
    });
  });

  t.test('timeouts and connection failures are retried until the attempts run out', async (t) => {
    t.match(classify(report({ kind: 'timeout' }), first, policy), {
      status: 'pending',
      outcome: 'retry',
      errorCode: 'timeout',
    });
    t.match(classify(report({ kind: 'timeout' }), last, policy), { status: 'timeout', outcome: 'timeout' });
    t.match(classify(report({ kind: 'connect-timeout' }), last, policy), {
      status: 'timeout',
      errorCode: 'connect_timeout',
    });
    t.match(classify(report({ kind: 'connect-failed', error: 'ECONNREFUSED' }), first, policy), {
      status: 'pending',
      errorCode: 'connect_failed',
      errorMessage: 'ECONNREFUSED',
    });
    t.match(classify(report({ kind: 'connect-failed', error: 'ECONNREFUSED' }), last, policy), { status: 'failed' });
    t.match(classify(report({ kind: 'dropped', error: 'closed' }), first, policy), {
      status: 'pending',
      errorCode: 'connection_lost',
    });
  });

  t.test('a retry that would fall after FORWARD_MAX_AGE_SECONDS is not scheduled', async (t) => {
    t.match(classify(report({ kind: 'timeout' }), { attempt: 1, ageSeconds: 3599.5 }, policy), {
      status: 'timeout',
      errorMessage: /gave up after 3600 s/,
    });
  });

  t.test('a refused address is final and says nothing of the relay', async (t) => {
    t.match(classify(report({ kind: 'not-allowed', error: 'loopback' }), first, policy), {
      status: 'failed',
      errorCode: 'address_not_allowed',
      health: 'none',
    });
  });

  t.test('an attempt interrupted by shutdown is due again at once', async (t) => {
    t.match(classify(report({ kind: 'shutdown' }), last, policy), {
      status: 'pending',
      retryInMs: 0,
      outcome: 'interrupted',
      health: 'none',
    });
  });
});
