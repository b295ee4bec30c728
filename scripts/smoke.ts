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
// PORT=0: the system picks a free port and the service says which in its "nostrx listening" line (a port picked
// here could be taken meanwhile, e.g. as the local end of an outgoing connection)
// No DATABASE_URL and no REDIS_URL: the embedded default a fresh clone runs.
const { DATABASE_URL: _db, REDIS_URL: _redis, ...inherited } = process.env;
const env = { ...inherited, DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'info' };

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function fail(msg: string): never {
  process.stderr.write(`smoke: FAILED: ${msg}\n`);
  process.exit(1);
}

// detached: the service runs in a process group of its own, so a failure can stop npm and node together
const child = spawn('npm', ['start', '--silent'], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
const killAll = () => {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
};
const deadline = setTimeout(() => {
  killAll();
  fail('timed out after 120 s');
}, 120_000);

let output = '';
const listening = new Promise<string>((resolve, reject) => {
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    const line = output
      .split('\n')
      .slice(0, -1)
      .find((l) => l.includes('"nostrx listening"')); // whole lines only
    if (line) resolve((JSON.parse(line) as { relay: string }).relay.replace('//localhost:', '//127.0.0.1:'));
  });
  child.on('exit', (code) => reject(new Error(`npm start exited with ${code} before listening:\n${output}`)));
});

try {
  const relayUrl = await listening;
  const relay = await Relay.connect(relayUrl);
  const ev = finalizeEvent(
    { kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: 'smoke test' },
    generateSecretKey(),
  );
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
  const fields = ['id', 'pubkey', 'created_at', 'kind', 'tags', 'content', 'sig'] as const;
  const back = got[0] as Record<string, unknown> | undefined;
  if (got.length !== 1 || !fields.every((f) => JSON.stringify(back?.[f]) === JSON.stringify(ev[f])))
    fail(`read back ${JSON.stringify(got)}`);
  // The account page, built by npm start's build step and served by the same process.
  const page = await fetch(`${relayUrl.replace(/^ws/, 'http')}app/`);
  if (page.status !== 200 || !(await page.text()).includes('app.js') || !page.headers.get('content-security-policy'))
    fail(`GET /app/ answered ${page.status}`);
  // SIGTERM to the whole group, as a terminal's Ctrl-C or a supervisor would: node must shut down cleanly.
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  process.kill(-child.pid!, 'SIGTERM');
  await exited;
  for (let i = 0; i < 100 && groupAlive(child.pid!); i++) await new Promise((r) => setTimeout(r, 100));
  if (groupAlive(child.pid!)) fail('the service did not exit within 10 s of SIGTERM');
  if (!output.includes('shutting down')) fail(`no clean shutdown was logged:\n${output}`);
  if (output.includes('"level":50') || output.includes('"level":60')) fail(`errors were logged:\n${output}`);
  process.stdout.write(
    `smoke: ok (published and read back ${ev.id} on embedded PGlite, /app/ served, clean shutdown)\n`,
  );
} catch (err) {
  killAll();
  fail(err instanceof Error ? err.message : String(err));
} finally {
  clearTimeout(deadline);
  rmSync(dataDir, { recursive: true, force: true });
}
