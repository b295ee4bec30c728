// withAnswerDeadline(): an admission that does not settle in time is answered `error:` at the deadline (and goes
// on: its late outcome is logged), one that throws is answered `error:` instead of leaving the client with no OK.
import t from 'tap';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { withAnswerDeadline } from '../../../src/core/admission/answer-deadline.js';
import type { Admission, Admit } from '../../../src/core/admission/contract.js';

function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'warn' }, stream), lines };
}

const ctx = { via: 'relay' as const, authed: new Set<string>() };
const raw = { id: 'a'.repeat(64) };

t.test(
  'an admission that is too slow is answered error: at the deadline, and its late outcome is logged',
  async (t) => {
    const { log, lines } = capture();
    let finish: (a: Admission) => void = () => undefined;
    const slow: Admit = () => new Promise((resolve) => (finish = resolve));
    let timeouts = 0;
    const admit = withAnswerDeadline(slow, { ms: 20, log, onTimeout: () => timeouts++ });
    t.same(await admit(raw, ctx), {
      status: 'rejected',
      eventId: raw.id,
      rejection: { prefix: 'error', message: 'error: could not store the event within 20 ms, try again later' },
    });
    t.equal(timeouts, 1);
    finish({ status: 'accepted', eventId: raw.id, message: '' });
    await new Promise((r) => setImmediate(r));
    t.match(lines, [{ eventId: raw.id, status: 'accepted', msg: /admitted later/ }]);
  },
);

t.test('an admission that throws is answered error:, not left without an OK', async (t) => {
  const { log, lines } = capture();
  const broken: Admit = async () => {
    throw new Error('connect ECONNREFUSED');
  };
  t.match(await withAnswerDeadline(broken, { ms: 1000, log })({ nonsense: true }, ctx), {
    status: 'rejected',
    eventId: '',
    rejection: { prefix: 'error', message: 'error: could not store the event, try again later' },
  });
  t.match(lines, [{ msg: 'admitting an event failed' }]);
});

t.test('an answer in time passes unchanged', async (t) => {
  const { log } = capture();
  const fast: Admit = async () => ({
    status: 'duplicate',
    eventId: raw.id,
    message: 'duplicate: already have this event',
  });
  t.same(await withAnswerDeadline(fast, { ms: 1000, log })(raw, ctx), {
    status: 'duplicate',
    eventId: raw.id,
    message: 'duplicate: already have this event',
  });
});
