// A verifier thread that starts like the real one (core/admission/verify-worker.ts) and dies on the first batch it is
// sent: what the pool does with the events that were in flight is then visible.
import { parentPort } from 'node:worker_threads';

parentPort?.postMessage({ ready: true });
parentPort?.on('message', () => process.exit(3));
