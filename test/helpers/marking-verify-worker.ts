// A verifier thread that starts like the real one (core/admission/verify-worker.ts) and answers every event with the same
// rejection, so a test can tell which checks were made on a thread and which on the main thread.
import { parentPort } from 'node:worker_threads';
import type { VerifyReply, VerifyRequest } from '../../src/core/admission/verifier-pool.js';

parentPort?.postMessage({ ready: true } satisfies VerifyReply);
parentPort?.on('message', (req: VerifyRequest) => {
  const verdict = { prefix: 'invalid', message: 'invalid: checked on the thread' } as const;
  parentPort?.postMessage({ batch: req.batch, verdicts: req.events.map(() => verdict) } satisfies VerifyReply);
});
