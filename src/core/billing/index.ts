// Payments: provider webhooks and their signatures.
// The capability's public surface: other capabilities, relay/, api/ and app.ts import from here only.
export * from './payment-webhooks.js';
export * from './webhook-signature.js';
export * from './billing.js';
export * from './errors.js';
export * from './facts.js';
export * from './ledger.js';
export * from './stripe.js';
export * from './lightning.js';
