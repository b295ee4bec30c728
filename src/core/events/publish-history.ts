// A user's published events as the API shows them: one record (with each upstream relay's outcome) visible only to
// the user it belongs to, and the user's list, newest first.
import type { Knex } from 'knex';
import {
  findEventRecord,
  listEventRecords,
  type EventListQuery,
  type EventRecord,
  type EventStatus,
} from '../../store/event-records.js';

export type { EventRecord, EventStatus };

type OwnRecord =
  | { readonly found: true; readonly record: EventRecord }
  | { readonly found: false; readonly reason: 'unknown' | 'not_yours' };

export interface EventRecords {
  /** The record of `eventId` if it belongs to `userId`. */
  own(userId: string, eventId: string): Promise<OwnRecord>;
  list(userId: string, q: EventListQuery): Promise<EventRecord[]>;
}

export function createEventRecords(db: Knex): EventRecords {
  return {
    async own(userId, eventId) {
      const record = await findEventRecord(db, eventId);
      if (!record) return { found: false, reason: 'unknown' };
      if (record.userId !== userId) return { found: false, reason: 'not_yours' };
      return { found: true, record };
    },
    list: (userId, q) => listEventRecords(db, userId, q),
  };
}
