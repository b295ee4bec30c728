// Stored and live events: REQ/COUNT queries, fan-out to subscribers (across processes), the publish history.
// The capability's public surface: other capabilities, relay/, api/ and app.ts import from here only.
export * from './fanout.js';
export * from './query.js';
export * from './publish-history.js';
export * from './negentropy-sessions.js';
