// bench/pg-counter.ts on a thread of its own: posts its port once it listens, then a snapshot of its counts for
// every 'snapshot' message, and closes on 'close'.
import { parentPort, workerData } from 'node:worker_threads';
import { startWireCounter } from './pg-counter.js';

const counter = await startWireCounter(workerData as { host: string; port: number });
parentPort?.postMessage({ port: counter.port });
parentPort?.on('message', (msg: string) => {
  if (msg === 'snapshot') parentPort?.postMessage({ counts: counter.snapshot() });
  else if (msg === 'close') void counter.close().then(() => parentPort?.close());
});
