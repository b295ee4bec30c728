// NIP-77 sessions of one client connection: NEG-OPEN reads the (created_at, id) of the live events its filters match,
// under the same filter rules as a REQ, and answers the initiator's first message; NEG-MSG goes on; NEG-CLOSE ends it.
// A session holds its set in memory, so the set is capped (NIP77_MAX_RECORDS: `blocked:` past it), a connection has
// a bounded number of them, and one left idle is closed (NIP77_IDLE_SECONDS). Answers are values: the relay sends a
// NEG-MSG with `reply` or a NEG-ERR with `error`.
import type { Knex } from 'knex';
import * as filter from '../../nips/filter.js';
import type { Filter } from '../../nips/filter.js';
import * as nip77 from '../../nips/nip77.js';
import { liveIdsMatching } from '../../store/events.js';

interface NegentropyLimits {
  /** Most events one session may reconcile. */
  readonly maxRecords: number;
  /** A session with no message for this long is closed. */
  readonly idleMs: number;
  /** Open sessions per connection. */
  readonly maxSessions: number;
  /** Largest answer, in bytes before hex (at least 4096). */
  readonly frameSizeLimit?: number;
}

type NegentropyAnswer = { readonly reply: string } | { readonly error: string };

export interface NegentropySessions {
  open(subId: string, filters: readonly Filter[], initialHex: string): Promise<NegentropyAnswer>;
  message(subId: string, hex: string): NegentropyAnswer;
  close(subId: string): void;
  closeAll(): void;
  readonly size: number;
}

export interface NegentropyDeps {
  readonly db: Knex;
  readonly limits: NegentropyLimits;
  /** Told the id of each session closed for idling (the relay sends NEG-ERR "closed: …"). */
  readonly onIdleClosed: (subId: string, reason: string) => void;
  readonly now?: () => number;
}

interface Session {
  readonly responder: nip77.Responder;
  lastUsed: number;
}

export function createNegentropySessions(deps: NegentropyDeps): NegentropySessions {
  const { limits } = deps;
  const sessions = new Map<string, Session>();
  let sweeper: NodeJS.Timeout | undefined;

  function sweep(): void {
    const cutoff = Date.now() - limits.idleMs;
    for (const [subId, s] of sessions) {
      if (s.lastUsed > cutoff) continue;
      sessions.delete(subId);
      deps.onIdleClosed(subId, `closed: the negentropy session was idle for ${Math.round(limits.idleMs / 1000)} s`);
    }
    if (sessions.size === 0) stopSweeper();
  }

  function startSweeper(): void {
    if (sweeper) return;
    sweeper = setInterval(sweep, Math.max(50, Math.floor(limits.idleMs / 4)));
    sweeper.unref();
  }

  function stopSweeper(): void {
    if (sweeper) clearInterval(sweeper);
    sweeper = undefined;
  }

  /** One round: the answer, or the reason the session ends (it is closed then). */
  function answer(subId: string, s: Session, hex: string): NegentropyAnswer {
    const query = nip77.fromHex(hex);
    if (!query) {
      sessions.delete(subId);
      return { error: 'invalid: the negentropy message is not hex' };
    }
    try {
      s.lastUsed = Date.now();
      return { reply: nip77.toHex(s.responder.respond(query)) };
    } catch (err) {
      sessions.delete(subId);
      if (err instanceof nip77.ProtocolError) return { error: `invalid: ${err.message}` };
      throw err;
    }
  }

  return {
    async open(subId, filters, initialHex) {
      sessions.delete(subId); // a NEG-OPEN with the id of an open session replaces it
      if (sessions.size >= limits.maxSessions)
        return { error: `blocked: too many open negentropy sessions, the limit is ${limits.maxSessions}` };
      const live = filters.filter((f) => !filter.matchesNothing(f));
      const now = deps.now?.() ?? Math.floor(Date.now() / 1000);
      const items = await liveIdsMatching(deps.db, live, limits.maxRecords, now);
      if (items.length > limits.maxRecords) {
        return {
          error: `blocked: this filter matches more than ${limits.maxRecords} events, the most one negentropy session reconciles; narrow it (since/until, authors, kinds)`,
        };
      }
      const session: Session = {
        responder: nip77.createResponder(nip77.storageOf(items), limits.frameSizeLimit),
        lastUsed: Date.now(),
      };
      sessions.set(subId, session);
      startSweeper();
      return answer(subId, session, initialHex);
    },
    message(subId, hex) {
      const s = sessions.get(subId);
      if (!s) return { error: 'closed: no open negentropy session with this id (send NEG-OPEN first)' };
      return answer(subId, s, hex);
    },
    close(subId) {
      sessions.delete(subId);
      if (sessions.size === 0) stopSweeper();
    },
    closeAll() {
      sessions.clear();
      stopSweeper();
    },
    get size() {
      return sessions.size;
    },
  };
}
