// Fairness between clients on one event loop. A client flooding cheap messages (each answered from memory, so
// all in one run of promise callbacks) would otherwise hold the loop until its backlog is gone, and everything
// that needs I/O — other clients' messages, the database's and the verifier threads' answers — would wait.
//
// A turn runs from one check phase of the event loop to the next. In a turn, each connection may start
// MESSAGES_PER_TURN messages, and all of them together may start messages for TURN_BUDGET_MS; a message past
// either waits for the next turn. The per-connection share is what keeps a bystander's event quick under a
// flood: its every step (its start, the signature check's reply, Redis, the commit) waits for the loop to come
// round, and with a share per connection a round costs a few milliseconds, not the whole budget.

/** Messages one connection may start in one turn of the event loop. */
export const MESSAGES_PER_TURN = 8;
/** How long messages may be started in one turn, over all connections. */
const TURN_BUDGET_MS = 20;

let turn = 0;
let inTurn = false;
let turnStartedAt = 0;

function endTurn(): void {
  inTurn = false;
}

function currentTurn(): number {
  if (!inTurn) {
    inTurn = true;
    turn++;
    turnStartedAt = performance.now();
    setImmediate(endTurn);
  }
  return turn;
}

// All the messages waiting for the next turn resume in one callback, so in one run of promise callbacks: what
// they send leaves in one write per socket (lib/ws-cork.ts), where a callback each made a write each.
let waiting: Promise<void> | undefined;

function nextTurn(): Promise<void> {
  waiting ??= new Promise((resolve) =>
    setImmediate(() => {
      waiting = undefined;
      resolve();
    }),
  );
  return waiting;
}

/** One connection's share: await it before starting each message. */
export type FairShare = () => Promise<void>;

export function createFairShare(perTurn = MESSAGES_PER_TURN, budgetMs = TURN_BUDGET_MS): FairShare {
  let seenTurn = 0;
  let started = 0;
  return async function share() {
    for (;;) {
      const t = currentTurn();
      if (t !== seenTurn) {
        seenTurn = t;
        started = 0;
      }
      if (started < perTurn && performance.now() - turnStartedAt <= budgetMs) {
        started++;
        return;
      }
      await nextTurn();
    }
  };
}
