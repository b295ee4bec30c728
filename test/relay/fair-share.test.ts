// Fairness between connections (relay/fair-share.ts): a connection with a long backlog of cheap messages starts
// only its share per turn of the event loop, so another connection's message, and any other callback waiting for
// the loop, runs after at most one share of the flood, not after the whole flood.
import t from 'tap';
import { createFairShare, MESSAGES_PER_TURN } from '../../src/relay/fair-share.js';

/** Queues `count` messages on one connection the way relay/connection.ts does: strictly in order, each after its share. */
function queueMessages(name: string, count: number, started: string[], work: () => void = () => {}): Promise<void> {
  const share = createFairShare();
  let queue = Promise.resolve();
  for (let i = 0; i < count; i++) {
    queue = queue.then(async () => {
      await share();
      started.push(`${name}${i}`);
      work();
    });
  }
  return queue;
}

t.test(
  'a flooding connection starts one share per turn; another connection starts within the first turns',
  async (t) => {
    const started: string[] = [];
    const flood = queueMessages('flood', 10 * MESSAGES_PER_TURN, started);
    const other = queueMessages('other', 2, started);
    await Promise.all([flood, other]);
    t.equal(started.length, 10 * MESSAGES_PER_TURN + 2, 'every message started');
    const firstOther = started.indexOf('other0');
    t.ok(
      firstOther <= 2 * MESSAGES_PER_TURN,
      `the other connection's first message started after ${firstOther} flood messages`,
    );
    t.ok(started.indexOf('other1') < 3 * MESSAGES_PER_TURN + 2, 'and its second one a turn later at most');
    const floodOrder = started.filter((s) => s.startsWith('flood'));
    t.same(
      floodOrder,
      Array.from({ length: 10 * MESSAGES_PER_TURN }, (_, i) => `flood${i}`),
      'one connection keeps its order',
    );
  },
);

t.test('callbacks waiting for the event loop run between shares of a flood', async (t) => {
  const started: string[] = [];
  const seenAt: number[] = [];
  const flood = queueMessages('flood', 5 * MESSAGES_PER_TURN, started);
  // an I/O-like callback scheduled while the flood is queued: it must not wait for the whole flood
  await new Promise<void>((resolve) => setImmediate(() => (seenAt.push(started.length), resolve())));
  await flood;
  t.ok(seenAt[0]! <= 2 * MESSAGES_PER_TURN, `ran after ${seenAt[0]} of ${5 * MESSAGES_PER_TURN} flood messages`);
});

t.test('slow messages: the turn budget over all connections ends a turn before a share is used up', async (t) => {
  const started: string[] = [];
  let between = 0;
  const busy = () => {
    const until = performance.now() + 8;
    while (performance.now() < until);
  };
  const timer = setInterval(() => between++, 0);
  // 8 ms a message and a 20 ms budget: at most 3 start in one turn although the share is 16
  await queueMessages('slow', 9, started, busy);
  clearInterval(timer);
  t.equal(started.length, 9);
  t.ok(between >= 2, `the event loop came round ${between} times during 9 slow messages`);
});

t.test(
  'messages of several connections waiting for the next turn resume together, so their answers leave in one write each',
  async (t) => {
    const started: string[] = [];
    // a run of callbacks ends when the promise callbacks are drained; a tick queued in one runs right after it
    let runs = 0;
    let inRun = false;
    const countRun = () => {
      if (inRun) return;
      inRun = true;
      runs++;
      process.nextTick(() => (inRun = false));
    };
    const turns = 4;
    await Promise.all(['a', 'b', 'c'].map((name) => queueMessages(name, turns * MESSAGES_PER_TURN, started, countRun)));
    t.equal(started.length, 3 * turns * MESSAGES_PER_TURN);
    t.ok(
      runs <= turns + 1,
      `${3 * turns * MESSAGES_PER_TURN} messages of 3 connections started in ${runs} runs of callbacks over ${turns} turns`,
    );
  },
);
