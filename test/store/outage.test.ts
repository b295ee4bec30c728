// isUnavailable(): which failures are an outage of PostgreSQL or Redis (answered "try again later") and which are
// not (a bug or bad data, answered as such). Errors made as the drivers make them.
import t from 'tap';
import { isUnavailable } from '../../src/store/outage.js';

const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });
const named = (name: string) => Object.assign(new Error('x'), { name });

t.test('connection failures, timeouts and server shutdowns are outages', async (t) => {
  for (const err of [
    coded('ECONNREFUSED'),
    coded('ECONNRESET'),
    coded('57014', 'canceling statement due to statement timeout'),
    coded('57P01'),
    coded('08006'),
    named('KnexTimeoutError'),
    named('MaxRetriesPerRequestError'),
    new Error('select 1 - Query read timeout'),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout expired'),
    new Error('Command timed out'),
    new Error("Socket timeout. Expecting data, but didn't receive any in 2000ms."),
  ]) {
    t.ok(isUnavailable(err), `${(err as { code?: string }).code ?? err.name}: ${err.message}`);
  }
});

t.test('bad data, constraint violations, deadlocks and bugs are not', async (t) => {
  for (const err of [
    coded('23505', 'duplicate key value violates unique constraint'),
    coded('22P02', 'invalid input syntax for type json'),
    coded('40P01', 'deadlock detected'),
    new TypeError("Cannot read properties of undefined (reading 'id')"),
    new Error('Query read timeout is a fine phrase in the middle'),
    'a string',
    undefined,
  ]) {
    t.notOk(isUnavailable(err), String(err));
  }
});
