// Moderation: NIP-86 ban and allow lists and the relay management API.
// The capability's public surface: other capabilities, relay/, api/ and app.ts import from here only.
export * from './ban-lists.js';
export * from './relay-management.js';
