// A real streaming replica for the tests of DATABASE_READ_URL: `pg_basebackup -R` of the primary into a temporary
// directory, started with pg_ctl on a free loopback port as the postgres system user, stopped and removed at
// teardown (and if the test process is interrupted). The primary is the machine's PostgreSQL (TEST_PG_URL); with
// TEST_REPLICA_PRIMARY=scratch, or when the machine's pg_hba.conf refuses replication connections (Debian's default
// does), it is a throwaway one made with initdb beside it. pg_basebackup copies the whole cluster: on the machine's, every database in it.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { adminUrl } from './db.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);

interface Teardown {
  teardown(fn: () => unknown): void;
  comment(...message: unknown[]): void;
}

export interface StreamingReplica {
  /** The primary's admin URL (database `test` or `postgres`): create the test's database there. */
  readonly primaryAdminUrl: string;
  /** The replica's URL for a database of the primary. */
  url(database: string): string;
  /** Stops the replica (fast shutdown: its clients are disconnected). */
  stop(): Promise<void>;
  /** Starts it again; resolves once it accepts connections and is in recovery. */
  start(): Promise<void>;
  /** Runs SQL on the replica as postgres (e.g. pg_wal_replay_pause()). */
  sql(database: string, text: string): Promise<pg.QueryResult>;
  /** How long pg_basebackup took, and how much it copied. */
  readonly copy: { readonly seconds: number; readonly megabytes: number };
}

/** The setting that lets the machine's primary serve pg_basebackup; named in the failure when it is missing. */
const HBA_LINE = 'host replication postgres 127.0.0.1/32 trust';

/** Commands run as the postgres system user (the owner a cluster's files must have). */
async function asPostgres(bin: string, args: readonly string[], timeoutMs = 300_000): Promise<string> {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, [...args]];
  try {
    const { stdout } = await run(cmd, argv, { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${path.basename(bin)} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function query(url: string, text: string, extra: Record<string, unknown> = {}): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, ...extra });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

/** Fails with what to change when the primary refuses replication connections (pg_hba.conf) or cannot stream. */
async function assertReplicationAllowed(url: string): Promise<void> {
  const { rows } = await query(
    url,
    "select current_setting('wal_level') as wal_level, current_setting('max_wal_senders')::int as senders",
  );
  const settings = rows[0] as { wal_level: string; senders: number };
  if (settings.wal_level === 'minimal' || settings.senders < 2) {
    throw new Error(
      `the primary ${url} cannot stream to a replica: wal_level=${settings.wal_level}, max_wal_senders=${settings.senders} (needs replica and at least 2)`,
    );
  }
  try {
    await query(url, 'IDENTIFY_SYSTEM', { replication: 'true' });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `the primary ${url} refuses replication connections (${message}). The replica test needs its pg_hba.conf ` +
        `(SHOW hba_file) to hold the line "${HBA_LINE}" above any reject line, then SELECT pg_reload_conf(); or run it ` +
        `with TEST_REPLICA_PRIMARY=scratch to use a throwaway primary instead.`,
      { cause: err },
    );
  }
}

/** The PostgreSQL binaries of the primary's major version (Debian's layout). */
async function binDirOf(url: string): Promise<string> {
  const { rows } = await query(url, "select current_setting('server_version_num')::int / 10000 as major");
  return `/usr/lib/postgresql/${(rows[0] as { major: number }).major}/bin`;
}

/** A hot standby needs these at least as high as its primary's. */
async function standbyMinimums(url: string): Promise<string> {
  const names = [
    'max_connections',
    'max_worker_processes',
    'max_wal_senders',
    'max_prepared_transactions',
    'max_locks_per_transaction',
  ];
  const { rows } = await query(
    url,
    `select name, setting from pg_settings where name in (${names.map((n) => `'${n}'`).join(', ')})`,
  );
  return (rows as { name: string; setting: string }[]).map((r) => `${r.name} = ${r.setting}`).join('\n');
}

interface Cluster {
  readonly dataDir: string;
  readonly port: number;
  readonly logFile: string;
}

function serverOptions(c: Cluster, socketDir: string): string {
  return `-p ${c.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${socketDir}`;
}

async function startCluster(bin: string, c: Cluster, socketDir: string): Promise<void> {
  await asPostgres(path.join(bin, 'pg_ctl'), [
    'start',
    '-D',
    c.dataDir,
    '-l',
    c.logFile,
    '-w',
    '-t',
    '120',
    '-o',
    serverOptions(c, socketDir),
  ]);
}

async function stopCluster(bin: string, c: Cluster): Promise<void> {
  await asPostgres(path.join(bin, 'pg_ctl'), ['stop', '-D', c.dataDir, '-m', 'fast', '-w', '-t', '60']);
}

/** For the interrupted test process: no await there, so synchronously. */
function stopClusterNow(bin: string, c: Cluster): void {
  const args = [path.join(bin, 'pg_ctl'), 'stop', '-D', c.dataDir, '-m', 'immediate', '-w', '-t', '30'];
  try {
    if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'ignore' });
    else execFileSync(args[0] as string, args.slice(1), { stdio: 'ignore' });
  } catch {
    // not running
  }
}

/** Makes a directory the postgres system user owns (and only it may read: PostgreSQL insists). */
function postgresDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  return dir;
}

async function startScratchPrimary(bin: string, root: string, clusters: Cluster[]): Promise<string> {
  const c: Cluster = {
    dataDir: path.join(root, 'primary'),
    port: await freePort(),
    logFile: path.join(root, 'primary.log'),
  };
  await asPostgres(path.join(bin, 'initdb'), [
    '-D',
    c.dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
    '--no-instructions',
  ]);
  clusters.push(c);
  await startCluster(bin, c, root);
  return `postgres://postgres@127.0.0.1:${c.port}/postgres`;
}

/**
 * Whether the replica is made from a throwaway primary: when asked (TEST_REPLICA_PRIMARY=scratch), or when the
 * machine's PostgreSQL refuses replication connections (a default Debian pg_hba.conf does), which is said on
 * stderr with the pg_hba.conf line that would let the test use the machine's own server.
 */
async function useScratchPrimary(): Promise<boolean> {
  if (process.env.TEST_REPLICA_PRIMARY === 'scratch') return true;
  try {
    await assertReplicationAllowed(adminUrl);
    return false;
  } catch (err) {
    process.stderr.write(
      `# replica test: ${err instanceof Error ? err.message : String(err)}; using a throwaway primary\n`,
    );
    return true;
  }
}

export async function startStreamingReplica(t: Teardown): Promise<StreamingReplica> {
  // decided before anything is made that would need removing
  const scratch = await useScratchPrimary();
  const root = postgresDir(mkdtempSync(path.join(tmpdir(), 'nostrx-replica-')));
  const clusters: Cluster[] = [];
  let bin = '/usr/lib/postgresql/15/bin';
  let removed = false;
  // A test process that crashes or is interrupted runs no teardown: its servers are stopped and files removed then,
  // synchronously (nothing else runs in an 'exit' handler).
  const removeNow = () => {
    if (removed) return;
    removed = true;
    clusters.forEach((c) => stopClusterNow(bin, c));
    rmSync(root, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    removeNow();
    process.kill(process.pid, signal);
  };
  process.once('exit', removeNow);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  t.teardown(async () => {
    process.off('exit', removeNow);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    for (const c of [...clusters].reverse()) await stopCluster(bin, c).catch(() => stopClusterNow(bin, c));
    removeNow();
  });

  const primaryAdminUrl = scratch ? await startScratchPrimary(bin, root, clusters) : adminUrl;
  bin = await binDirOf(primaryAdminUrl);
  if (scratch) await assertReplicationAllowed(primaryAdminUrl);
  const primary = new URL(primaryAdminUrl);
  const replica: Cluster = {
    dataDir: path.join(root, 'replica'),
    port: await freePort(),
    logFile: path.join(root, 'replica.log'),
  };

  const started = Date.now();
  // -c fast: an immediate checkpoint rather than a spread one (minutes); --no-sync: a throwaway copy.
  await asPostgres(path.join(bin, 'pg_basebackup'), [
    '-h',
    primary.hostname,
    '-p',
    primary.port || '5432',
    '-U',
    decodeURIComponent(primary.username || 'postgres'),
    '-D',
    replica.dataDir,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ]);
  const seconds = (Date.now() - started) / 1000;
  const megabytes = Number((await asPostgres('du', ['-sm', replica.dataDir])).split(/\s/)[0]);
  t.comment(`pg_basebackup copied ${megabytes} MB in ${seconds.toFixed(1)} s`);

  // Debian keeps a cluster's configuration outside its data directory, so the copy may have none: write our own
  // (the port, address and socket directory are given on the command line, above postgresql.auto.conf).
  writeFileSync(
    path.join(replica.dataDir, 'postgresql.conf'),
    `hot_standby = on\n${await standbyMinimums(primaryAdminUrl)}\nshared_buffers = 32MB\nfsync = off\nssl = off\n`,
  );
  writeFileSync(path.join(replica.dataDir, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
  writeFileSync(path.join(replica.dataDir, 'pg_ident.conf'), '');
  const replicaAdminUrl = `postgres://postgres@127.0.0.1:${replica.port}/postgres`;

  const start = async () => {
    await startCluster(bin, replica, root);
    await waitFor(
      'the replica to accept connections in recovery',
      async () => {
        try {
          return (await query(replicaAdminUrl, 'select pg_is_in_recovery() as r')).rows[0]?.r === true;
        } catch {
          return false;
        }
      },
      60_000,
      200,
    );
  };
  clusters.push(replica);
  await start();

  return {
    primaryAdminUrl,
    url: (database) => withDatabase(replicaAdminUrl, database),
    stop: () => stopCluster(bin, replica),
    start,
    sql: (database, text) => query(withDatabase(replicaAdminUrl, database), text),
    copy: { seconds, megabytes },
  };
}
