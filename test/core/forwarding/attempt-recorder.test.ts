// What the recorder writes for one attempt: the attempt_log entry and the day its figures count for.
import t from 'tap';
import { attemptRecord, dayIn } from '../../../src/core/forwarding/attempt-recorder.js';
import type { ClaimedPublish } from '../../../src/store/outbox.js';

t.test('dayIn gives the calendar day in the user timezone, UTC for an unknown zone', async (t) => {
  const at = new Date('2026-03-01T23:30:00Z');
  t.equal(dayIn('UTC', at), '2026-03-01');
  t.equal(dayIn('Asia/Tokyo', at), '2026-03-02');
  t.equal(dayIn('America/New_York', at), '2026-03-01');
  t.equal(dayIn('Not/AZone', at), '2026-03-01');
});

const row = { id: 'r1', createdAt: 'x', attempt: 3, url: 'wss://relay.example/' } as unknown as ClaimedPublish;

t.test('attemptRecord keeps the relay answer, the timings and the transitions of the attempt', async (t) => {
  const transitions = [
    { status: 'connecting' as const, at: 'a' },
    { status: 'answered' as const, at: 'b' },
  ];
  const rec = attemptRecord(
    {
      row,
      decision: {
        status: 'rejected',
        outcome: 'rejected',
        errorCode: 'blocked',
        errorMessage: 'blocked: no',
        health: 'ok',
      },
      report: {
        result: {
          kind: 'answered',
          accepted: false,
          message: 'blocked: no',
          response: ['OK', 'id', false, 'blocked: no'],
        },
        connectionMs: 5,
        publishMs: 7,
        totalMs: 13,
        reused: false,
        remoteAddress: '1.2.3.4',
        transitions,
      },
      startedAt: new Date('2026-01-01T00:00:00Z'),
      pausedUntil: null,
    },
    'w1',
  );
  t.match(rec, {
    status: 'rejected',
    connectionTimeMs: 5,
    publishTimeMs: 7,
    totalTimeMs: 13,
    relayResponse: ['OK', 'id', false, 'blocked: no'],
    errorCode: 'blocked',
    ipAddress: '1.2.3.4',
  });
  t.match(rec.logEntry, {
    attempt: 3,
    worker: 'w1',
    outcome: 'rejected',
    started_at: '2026-01-01T00:00:00.000Z',
    transitions,
    error_message: 'blocked: no',
  });
  t.notOk('retry_in_ms' in rec.logEntry);
});

t.test('a retry says when the next attempt is due', async (t) => {
  const rec = attemptRecord(
    {
      row,
      decision: {
        status: 'pending',
        retryInMs: 800,
        outcome: 'retry',
        errorCode: 'timeout',
        errorMessage: 'no OK',
        health: 'fail',
      },
      report: null,
      startedAt: new Date(),
      pausedUntil: null,
    },
    'w1',
  );
  t.equal(rec.relayResponse, null);
  t.equal(rec.logEntry.retry_in_ms, 800);
  t.type(rec.logEntry.next_attempt_at, 'string');
});
