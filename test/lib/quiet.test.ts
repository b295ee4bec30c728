// quietly(): a report that repeats is passed on once per quiet period, with the repeats left out counted.
import t from 'tap';
import { quietly } from '../../src/lib/quiet.js';

t.test(
  'the same message is passed on once per quiet period, a new one at once, each with the repeats left out',
  async (t) => {
    const seen: [string, number][] = [];
    const report = quietly((m, repeats) => seen.push([m, repeats]), 60_000);
    for (let i = 0; i < 5; i++) report('down');
    report('refused');
    report('refused');
    t.same(seen, [
      ['down', 0],
      ['refused', 4],
    ]);
  },
);

t.test('after the quiet period the message is passed on again', async (t) => {
  const seen: [string, number][] = [];
  const report = quietly((m, repeats) => seen.push([m, repeats]), 0);
  report('down');
  await new Promise((r) => setTimeout(r, 2));
  report('down');
  t.same(seen, [
    ['down', 0],
    ['down', 0],
  ]);
});
