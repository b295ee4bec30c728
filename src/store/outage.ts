// Which failures mean "the database or Redis is not answering" (an outage: try again later) rather than a bug or
// bad data. Told apart by the codes the drivers give (SQLSTATE, errno, error class names) and, for the few failures
// node-pg and ioredis raise without a code, by their fixed message.
const unavailableSqlStates = new Set([
  '57014', // query_canceled: statement_timeout
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '53300', // too_many_connections
  '55P03', // lock_not_available (lock_timeout)
]);

const unavailableErrnos = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * node-pg's and ioredis' own failures that carry no code: a connection lost, or no answer in time. Matched at the
 * end of the message: knex puts the statement in front of it.
 */
const unavailableMessages = [
  /Query read timeout$/,
  /Connection terminated unexpectedly$/,
  /Connection terminated due to connection timeout$/,
  /timeout exceeded when trying to connect$/,
  /^timeout expired$/, // node-pg: no connection within connectionTimeoutMillis
  /is not queryable$/,
  /Command timed out$/,
  /Connection is closed\.?$/,
  /Socket timeout\. Expecting data, but didn't receive any in \d+ms\.$/,
  /Stream isn't writeable and enableOfflineQueue options is false$/,
];

export function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  // knex: no pooled connection within the acquire timeout
  if (e.name === 'KnexTimeoutError' || e.name === 'MaxRetriesPerRequestError') return true;
  if (typeof e.code === 'string') {
    if (unavailableSqlStates.has(e.code) || e.code.startsWith('08') || unavailableErrnos.has(e.code)) return true;
  }
  return typeof e.message === 'string' && unavailableMessages.some((m) => m.test(e.message as string));
}
