// Operations: metrics, readiness, maintenance jobs, usage recording and the figures of reports.
// The capability's public surface: other capabilities, relay/, api/ and app.ts import from here only.
export * from './metrics.js';
export * from './health.js';
export * from './maintenance.js';
export * from './user-retention.js';
export * from './usage-recorder.js';
export * from './figures.js';
export * from './live-overview.js';
export * from './audit-trail.js';
export * from './outage.js';
