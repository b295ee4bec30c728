// The admission pipeline (check, verify, reserve, write, publish, settle), its contract and the verifier threads.
// The capability's public surface: other capabilities, relay/, api/ and app.ts import from here only.
export * from './contract.js';
export * from './pipeline.js';
export * from './verifier-pool.js';
export * from './answer-deadline.js';
