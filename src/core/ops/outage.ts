// For the transports: a failure that means the database or Redis is unavailable is answered "try again later"
// (HTTP 503, `error:`), not as an internal error. The classification is the store's (store/outage.ts).
export { isUnavailable } from '../../store/outage.js';
