// PostgreSQL failures that a second try can cure, by SQLSTATE (ours included: the quota refusal of migration 0023). Knowing what the database's error codes mean is the
// store's business; when and how often to try again is the caller's (src/lib/retry.ts).

// 40P01 deadlock_detected and 40001 serialization_failure: the transaction was rolled back because of a concurrent
// one; PostgreSQL's advice is to run the whole transaction again.
const transactionConflicts = new Set(['40P01', '40001']);

function sqlstate(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A deadlock victim or a serialization failure: the transaction was rolled back and may simply be run again. */
export function isTransactionConflict(err: unknown): boolean {
  const code = sqlstate(err);
  return code !== undefined && transactionConflicts.has(code);
}

/** 55P03 lock_not_available: a lock wait ran past lock_timeout (or a NOWAIT lock was taken); nothing was done. */
export function isLockTimeout(err: unknown): boolean {
  return sqlstate(err) === '55P03';
}

/**
 * NXQ01, raised by the group commit's statement (store/event-batch.ts, migration 0023): a period of the ledger had no
 * room for the batch's posts in it, and nothing of the statement was stored; the batch may be written again with
 * its posts charged one by one.
 */
export function isQuotaRefusal(err: unknown): boolean {
  return sqlstate(err) === 'NXQ01';
}

/**
 * 57014 query_canceled: the statement ran past statement_timeout (DB_QUERY_TIMEOUT_MS). Of a statement that held
 * several reads, only the slowest may be to blame: each read alone may well finish in time.
 */
export function isStatementTimeout(err: unknown): boolean {
  return sqlstate(err) === '57014';
}
