// The body of one verifier thread (core/admission/verifier-pool.ts): loads the main thread's signature backend, then
// answers each batch of events with one verdict per event, in order: null when the id and signature hold, else
// the rejection.
import { parentPort, workerData } from 'node:worker_threads';
import * as nip01 from '../../nips/nip01.js';
import type { Rejection } from '../../nips/result.js';
import type { VerifyReply, VerifyRequest, VerifyWorkerData } from './verifier-pool.js';

const port = parentPort;
if (!port) throw new Error('verify-worker.ts runs only as a worker thread');

function verdictOf(ev: nip01.NostrEvent): Rejection | null {
  const r = nip01.verifySignature(ev);
  return r.ok ? null : r.rejection;
}

try {
  await nip01.initVerifier({ backend: (workerData as VerifyWorkerData).backend });
  port.postMessage({ ready: true } satisfies VerifyReply);
} catch (err) {
  port.postMessage({ failed: err instanceof Error ? err.message : String(err) } satisfies VerifyReply);
  process.exit(1); // ends this thread only
}

port.on('message', (req: VerifyRequest) => {
  port.postMessage({ batch: req.batch, verdicts: req.events.map(verdictOf) } satisfies VerifyReply);
});
