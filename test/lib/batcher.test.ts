// The batcher (src/lib/batcher.ts): what is asked in one turn leaves in one call, answers reach each asker, and with
// maxInFlight no more calls than that run at once while what is asked meanwhile waits and leaves together.
import t from 'tap';
import { createBatcher } from '../../src/lib/batcher.js';

/** A load whose calls the test answers by hand, in the order it chooses. */
function heldLoad() {
  const calls: { keys: number[]; answer: () => void; fail: (e: Error) => void }[] = [];
  const load = (keys: number[]) =>
    new Promise<Map<number, string>>((resolve, reject) => {
      calls.push({ keys, answer: () => resolve(new Map(keys.map((k) => [k, `v${k}`]))), fail: reject });
    });
  return { calls, load };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

t.test('keys asked in one turn leave in one call, split by maxBatch; each asker gets its own answer', async (t) => {
  const { calls, load } = heldLoad();
  const get = createBatcher(load, { maxBatch: 3 });
  const answers = Promise.all([1, 2, 3, 4, 2].map(get));
  await turn();
  t.same(
    calls.map((c) => c.keys),
    [[1, 2, 3], [4]],
    'a key asked twice is loaded once',
  );
  for (const c of calls) c.answer();
  t.same(await answers, ['v1', 'v2', 'v3', 'v4', 'v2']);
});

t.test('with a weight, a call carries at most maxWeight, and a heavier key goes alone', async (t) => {
  const { calls, load } = heldLoad();
  const get = createBatcher(load, { maxBatch: 4, maxWeight: 10, weight: (k) => k });
  const answers = Promise.all([3, 4, 2, 12, 1, 1, 5, 6].map(get));
  await turn();
  t.same(
    calls.map((c) => c.keys),
    [[3, 4, 2], [12], [1, 5], [6]],
    'runs in the order asked, each within the weight; a key asked twice is loaded once',
  );
  for (const c of calls) c.answer();
  t.same(await answers, ['v3', 'v4', 'v2', 'v12', 'v1', 'v1', 'v5', 'v6']);
});

t.test('with maxInFlight, what is asked while the calls run leaves together when one returns', async (t) => {
  const { calls, load } = heldLoad();
  const get = createBatcher(load, { maxBatch: 2, maxInFlight: 2 });
  const first = Promise.all([1, 2, 3, 4, 5].map(get));
  await turn();
  t.same(
    calls.map((c) => c.keys),
    [
      [1, 2],
      [3, 4],
    ],
    'two calls at most; the fifth key waits',
  );
  const later = Promise.all([6, 7].map(get));
  await turn();
  t.equal(calls.length, 2, 'nothing leaves while both calls run');
  calls[0]!.answer();
  await turn();
  t.same(calls[2]?.keys, [5, 6], 'the waiting keys leave as soon as a call returns, up to maxBatch');
  calls[1]!.answer();
  await turn();
  t.same(calls[3]?.keys, [7]);
  calls[2]!.answer();
  calls[3]!.answer();
  t.same(await first, ['v1', 'v2', 'v3', 'v4', 'v5']);
  t.same(await later, ['v6', 'v7']);
});

t.test('a failed call fails its own askers only, and frees its place', async (t) => {
  const { calls, load } = heldLoad();
  const get = createBatcher(load, { maxBatch: 1, maxInFlight: 1 });
  const a = get(1);
  const b = get(2);
  await turn();
  t.equal(calls.length, 1);
  calls[0]!.fail(new Error('connection lost'));
  await t.rejects(a, /connection lost/);
  await turn();
  t.same(calls[1]?.keys, [2], 'the next key leaves after the failure');
  calls[1]!.answer();
  t.equal(await b, 'v2');
});

t.test('with aloneUnder, a key asked while fewer calls run leaves at once; the others wait for the turn', async (t) => {
  const { calls, load } = heldLoad();
  const get = createBatcher(load, { maxBatch: 8, maxInFlight: 4, aloneUnder: 2 });
  const answers = Promise.all([1, 2, 3, 4, 5].map(get));
  t.same(
    calls.map((c) => c.keys),
    [[1], [2]],
    'the first two leave alone, before the turn ends',
  );
  await turn();
  t.same(calls[2]?.keys, [3, 4, 5], 'the rest leave together at the end of the turn');
  for (const c of calls) c.answer();
  t.same(await answers, ['v1', 'v2', 'v3', 'v4', 'v5']);
  const later = get(6);
  t.same(calls[3]?.keys, [6], 'alone again once the calls have returned');
  calls[3]!.answer();
  t.equal(await later, 'v6');
});

t.test('a load that throws instead of rejecting fails its askers and frees its place', async (t) => {
  let calls = 0;
  const get = createBatcher<number, string>(
    (keys) => {
      calls++;
      if (keys.includes(1)) throw new Error('thrown, not rejected');
      return Promise.resolve(new Map(keys.map((k) => [k, `v${k}`])));
    },
    { maxInFlight: 1, aloneUnder: 1 },
  );
  await t.rejects(get(1), /thrown, not rejected/);
  t.equal(await get(2), 'v2', 'the next key is loaded: the place was freed');
  t.equal(calls, 2);
});
