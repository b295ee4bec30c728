// Smoke test of `npm start` in embedded mode (PGlite, no Redis): starts the built service as a user would,
// publishes an event with a real client, reads it back, stops the service with SIGTERM. Exit 0 on success.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';

useWebSocketImplementation(WebSocket);

const dataDir = mkdtempSync(path.join(tmpdir(), 'nostrx-smoke-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const env = { ...process.env, DATABASE_URL: '', REDIS_URL: '', DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' };
delete env.DATABASE_URL;
delete env.REDIS_URL;

function fail(msg: string): never {
  process.stderr.write(`smoke: FAILED: ${msg}\n`);
  process.exit(1);
}

const child = spawn('npm', ['start', '--silent'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
const deadline = setTimeout(() => {
  child.kill('SIGKILL');
  fail('timed out after 120 s');
}, 120_000);

let output = '';
const listening = new Promise<void>((resolve, reject) => {
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes('nostrx listening')) resolve();
  });
  child.on('exit', (code) => reject(new Error(`npm start exited with ${code} before listening:\n${output}`)));
});

try {
  await listening;
  const relay = await Relay.connect(`ws://127.0.0.1:${port}`);
  const ev = finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: 'smoke test' }, generateSecretKey());
  await relay.publish(ev);
  const got = await new Promise<unknown[]>((resolve) => {
    const seen: unknown[] = [];
    const sub = relay.subscribe([{ ids: [ev.id] }], {
      onevent: (e) => seen.push(e),
      oneose: () => {
        sub.close();
        resolve(seen);
      },
    });
  });
  relay.close();
  if (got.length !== 1 || JSON.stringify(got[0]) !== JSON.stringify(ev)) fail(`read back ${JSON.stringify(got)}`);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const code = await exited;
  if (code !== 0) fail(`exit code ${code} after SIGTERM`);
  process.stdout.write(`smoke: ok (published and read back ${ev.id} on embedded PGlite, clean shutdown)\n`);
} catch (err) {
  child.kill('SIGKILL');
  fail(err instanceof Error ? err.message : String(err));
} finally {
  clearTimeout(deadline);
  rmSync(dataDir, { recursive: true, force: true });
}
