// Every EVENT is answered in bounded time, from the relay and the API alike, whatever the database or Redis do
// (down, refusing, slow, half-open): past the deadline the client is told `error: …` and may retry. The admission
// itself runs on: if it stores the event after all, the event is served, forwarded and counted as any other, and
// the client's retry is answered `duplicate:` (OK true, and charged once). A failure that escapes admission is
// answered the same way, never left without an OK. Only what was really stored is ever answered OK true.
import type { Logger } from '../../log.js';
import { quietly } from '../../lib/quiet.js';
import { rejection } from '../../nips/result.js';
import { isUnavailable } from '../../store/outage.js';
import type { Admission, AdmissionContext, Admit } from './contract.js';
import { idOf } from './pipeline.js';
import { withDeadline } from '../../lib/deadline.js';

export interface AnswerDeadlineOptions {
  readonly ms: number;
  readonly log: Logger;
  /** Told when an answer was given by the deadline (metrics), with where the event came from. */
  readonly onTimeout?: (via: AdmissionContext['via']) => void;
}

class AnswerTimeout extends Error {}

export function withAnswerDeadline(admit: Admit, opts: AnswerDeadlineOptions): Admit {
  const { ms, log } = opts;
  const failed = (eventId: string, message: string): Admission => ({
    status: 'rejected',
    eventId,
    rejection: rejection('error', message),
  });
  // While a dependency is away every event fails the same way: logged once per half minute, with the repeats counted.
  let lastOutage: unknown;
  const outageQuietly = quietly((_message, repeats) =>
    log.warn({ err: lastOutage, repeats }, 'events refused: a dependency is unavailable'),
  );
  const outage = (err: unknown): void => {
    lastOutage = err;
    outageQuietly(err instanceof Error ? err.message : String(err));
  };
  return async (raw, ctx) => {
    const work = admit(raw, ctx);
    try {
      return await withDeadline(work, ms, () => new AnswerTimeout());
    } catch (err) {
      const eventId = idOf(raw);
      if (!(err instanceof AnswerTimeout)) {
        if (isUnavailable(err)) outage(err);
        else log.error({ err, eventId }, 'admitting an event failed');
        return failed(eventId, 'could not store the event, try again later');
      }
      opts.onTimeout?.(ctx.via);
      work.then(
        (late) =>
          log.warn(
            { eventId, status: late.status, afterMs: ms },
            'an event answered error: at its deadline was admitted later',
          ),
        (lateErr: unknown) => log.error({ err: lateErr, eventId }, 'admitting an event failed after its deadline'),
      );
      return failed(eventId, `could not store the event within ${ms} ms, try again later`);
    }
  };
}
