// Forwarding to upstream relays: the enqueue phase of admission, the outbox worker, the upstream pool, retry policy, attempt records, relay targets (SSRF guard) and the user's relays.
// The capability's public surface: other capabilities, relay/, api/ and app.ts import from here only.
export * from './enqueue.js';
export * from './forwarder.js';
export * from './upstream-pool.js';
export * from './policy.js';
export * from './attempt-recorder.js';
export * from './relay-targets.js';
export * from './upstream-info.js';
export * from './relay-settings.js';
export * from './delivery-audit.js';
export * from './negentropy-client.js';
