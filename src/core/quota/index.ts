// Tier quotas and plans: the quota phases of admission, periods in the user's time zone, plan features, message rate limits.
// The capability's public surface: other capabilities, relay/, api/ and app.ts import from here only.
export * from './tier-quota.js';
export * from './periods.js';
export * from './post-gate.js';
export * from './rate-limits.js';
export * from './plans.js';
export * from './features.js';
