// Accounts: authors and users, sessions and HTTP authentication, profile and export, admin changes, cache invalidation across processes.
// The capability's public surface: other capabilities, relay/, api/ and app.ts import from here only.
export * from './accounts.js';
export * from './sessions.js';
export * from './http-auth.js';
export * from './profile.js';
export * from './account-admin.js';
export * from './user-directory.js';
export * from './cache-invalidation.js';
export * from './identities.js';
export * from './email-verification.js';
export * from './mailer.js';
