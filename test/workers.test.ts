// WORKERS > 1 (src/index.ts): the cluster primary migrates once and checks the server's settings once, then forks
// the workers, which share one port and one database; an event published through one is read back whichever worker
// a connection lands on; SIGTERM stops them all. Run as a user runs it: `node src/index.ts` with the environment.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { createTestDatabaseUrl } from './helpers/db.js';
import { buildEvent, newKey } from './helpers/events.js';
import { patientLimits } from './helpers/limits.js';
import { testRedisPrefix, testRedisUrl } from './helpers/redis.js';
import { waitFor } from './helpers/wait-for.js';
import { openDatabase } from '../src/store/db.js';
import { analyzesAsTablesGrow } from '../src/store/server-settings.js';

useWebSocketImplementation(WebSocket);

interface LogLine {
  readonly msg: string;
  readonly pid?: number;
  readonly relay?: string;
  readonly autovacuum?: string;
  readonly applied?: string[];
}

t.test('two workers: one migration, one warning, one port, one store, one stop', async (t) => {
  const databaseUrl = await createTestDatabaseUrl(t);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: {
      ...process.env,
      ...patientLimits,
      WORKERS: '2',
      DATABASE_URL: databaseUrl,
      REDIS_URL: testRedisUrl,
      REDIS_PREFIX: testRedisPrefix(t),
      HOST: '127.0.0.1',
      PORT: '0',
      UPSTREAM_RELAYS: '',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: LogLine[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // not a log line
    }
  });
  const of = (msg: string) => lines.filter((l) => l.msg === msg);

  await waitFor('both workers listening', () => of('nostrx listening').length === 2, 120_000);
  const [first, second] = of('nostrx listening');
  t.not(first!.pid, second!.pid, 'two processes');
  t.equal(first!.relay, second!.relay, 'on one port');

  const migrated = of('migrations applied; forking workers');
  t.equal(migrated.length, 1, 'the primary migrates');
  t.ok((migrated[0]?.applied ?? []).length > 0, 'everything, before any worker starts');
  t.equal(of('migrations applied').length, 0, 'no worker has anything left to apply');
  const db = await openDatabase({ databaseUrl, dataDir: '', poolMax: 1 });
  const analyzes = await analyzesAsTablesGrow(db.knex);
  await db.close();
  t.equal(
    lines.filter((l) => l.autovacuum === 'off').length,
    analyzes ? 0 : 1,
    analyzes ? 'the server analyzes tables: no warning' : "the server's settings are warned of once, not per worker",
  );

  const url = first!.relay!.replace('//localhost:', '//127.0.0.1:');
  const author = newKey();
  const events = Array.from({ length: 4 }, (_, i) => buildEvent(author.sk, { content: `from the cluster ${i}` }));
  // connections spread over the workers as the primary hands them out: one a post, so the basic plan's 3 a day are
  // counted across both, and each event is read back on a connection of its own, some on the worker that did not
  // store it
  for (const ev of events.slice(0, 3)) {
    const relay = await Relay.connect(url);
    await relay.publish(ev);
    relay.close();
  }
  const fourth = await Relay.connect(url);
  await t.rejects(
    fourth.publish(events[3]!),
    /^rate-limited: daily limit of 3 posts/,
    "the plan's limit holds across workers",
  );
  fourth.close();
  for (const ev of events.slice(0, 3)) {
    const relay = await Relay.connect(url);
    const found = await new Promise<string[]>((resolve) => {
      const ids: string[] = [];
      const sub = relay.subscribe([{ ids: [ev.id] }], {
        onevent: (e) => ids.push(e.id),
        oneose: () => {
          sub.close();
          resolve(ids);
        },
      });
    });
    relay.close();
    t.same(found, [ev.id], `event ${ev.content.slice(-1)} read back`);
  }

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM stops the cluster cleanly');
  t.equal(of('all workers stopped').length, 1);
});
