// The `cursor` of the list routes (keyset pagination): a row id the API gave out as `next_cursor`, base64url.
import { apiError } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const encodeCursor = (rowId: string): string => Buffer.from(rowId, 'utf8').toString('base64url');

/** The row id behind a cursor; a cursor this API did not give out is a 400 naming the field. */
export function decodeCursor(cursor: string): string {
  const rowId = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!UUID.test(rowId))
    throw apiError('validation_failed', 'querystring.cursor is not a cursor this API gave out', {
      field: 'cursor',
      location: 'querystring',
    });
  return rowId;
}
