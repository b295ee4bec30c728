// The whole service in a child process, for tests that need a second process: our own relay as an upstream, or a
// forwarder to kill with SIGKILL. Configured by the environment like src/index.ts; prints one JSON line
// {"ready":true,"relayUrl":…,"workerId":…} on stdout once listening, and stops cleanly on SIGTERM.
// Run: node --import tsx test/helpers/service-process.ts
import { loadConfig } from '../../src/config.js';
import { startApp } from '../../src/app.js';

const app = await startApp({ config: loadConfig(process.env) });
process.stdout.write(`${JSON.stringify({ ready: true, relayUrl: app.relayUrl, workerId: app.forwarder.workerId })}\n`);
process.on('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
