// Bounded retries (src/lib/retry.ts): how many tries, which failures are retried, and the jittered waits.
import t from 'tap';
import { backoffDelay, retrying } from '../../src/lib/retry.js';

const conflict = Object.assign(new Error('deadlock detected'), { code: '40P01' });
const retryable = (err: unknown) => (err as { code?: string }).code === '40P01';

t.test('backoffDelay doubles per try, jittered to between half and one and a half times', async (t) => {
  t.equal(
    backoffDelay(20, 1, () => 0),
    10,
    'the least wait after the first try',
  );
  t.equal(
    backoffDelay(20, 1, () => 0.5),
    20,
  );
  t.equal(
    backoffDelay(20, 2, () => 0.5),
    40,
    'doubled after the second',
  );
  t.equal(
    backoffDelay(20, 3, () => 0.999),
    120,
    'at most one and a half times',
  );
});

t.test('a retryable failure is tried again until it succeeds', async (t) => {
  const seen: number[] = [];
  const retried: [number, number][] = [];
  const result = await retrying(
    async (attempt) => {
      seen.push(attempt);
      if (attempt < 3) throw conflict;
      return 'stored';
    },
    { attempts: 3, baseDelayMs: 1, retryable, onRetry: (_err, attempt, delayMs) => retried.push([attempt, delayMs]) },
  );
  t.equal(result, 'stored');
  t.same(seen, [1, 2, 3]);
  t.same(
    retried.map(([a]) => a),
    [1, 2],
    'told of each failure that is retried',
  );
  t.ok(
    retried.every(([a, d]) => d >= 2 ** (a - 1) / 2 && d <= 2 ** (a - 1) * 1.5),
    'with waits in the jitter range',
  );
});

t.test('after the last try the last failure is thrown', async (t) => {
  let tries = 0;
  await t.rejects(
    retrying(
      async () => {
        tries++;
        throw conflict;
      },
      { attempts: 3, baseDelayMs: 1, retryable },
    ),
    conflict,
  );
  t.equal(tries, 3);
});

t.test('any other failure is thrown at once', async (t) => {
  let tries = 0;
  const other = Object.assign(new Error('duplicate key'), { code: '23505' });
  await t.rejects(
    retrying(
      async () => {
        tries++;
        throw other;
      },
      { attempts: 3, baseDelayMs: 1, retryable },
    ),
    other,
  );
  t.equal(tries, 1);
  await t.rejects(
    retrying(async () => 1, { attempts: 0, baseDelayMs: 1, retryable }),
    RangeError,
    'at least one try',
  );
});
