// The outage limits of the service (ANSWER_TIMEOUT_MS, DB_*_TIMEOUT_MS, REDIS_TIMEOUT_MS) as the tests set them.
import { configKeys } from '../../src/config.js';

/**
 * The outage limits (ANSWER_TIMEOUT_MS, DB_*_TIMEOUT_MS, REDIS_TIMEOUT_MS) made patient for tests that are not
 * about outages: on a machine loaded by other work a healthy answer can take seconds, and these tests expect it.
 * The fault tests (test/chaos/) run with the defaults instead: `defaultLimits`.
 */
export const patientLimits: Record<string, string> = {
  ANSWER_TIMEOUT_MS: '60000',
  DB_CONNECT_TIMEOUT_MS: '30000',
  DB_ACQUIRE_TIMEOUT_MS: '60000',
  DB_QUERY_TIMEOUT_MS: '120000',
  REDIS_TIMEOUT_MS: '30000',
};

/** The same keys at the service's own defaults (src/config.ts), for the fault tests. */
export const defaultLimits: Record<string, string> = Object.fromEntries(
  configKeys.filter((k) => k.env in patientLimits).map((k) => [k.env, String(k.default)]),
);
