// Entry point: load and validate the configuration, then either run the service in this process (WORKERS=1)
// or, as the cluster primary, migrate once and fork WORKERS processes that share the port. Each process stops
// cleanly on SIGTERM/SIGINT within a bounded time.
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { startApp, warnUnlessTablesAnalyzed } from './app.js';
import { openDatabase } from './store/db.js';
import { migrateLatest } from './store/migrate.js';

const SHUTDOWN_MS = 10_000;

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

function onSignals(stop: (signal: string) => void): void {
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function runService(config: Config, log: Logger): Promise<void> {
  const app = await startApp({ config, log });
  let stopping = false;
  onSignals((signal) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const started = Date.now();
    const force = setTimeout(() => {
      log.error({ afterMs: SHUTDOWN_MS }, 'shutdown took too long, exiting');
      process.exit(1);
    }, SHUTDOWN_MS);
    force.unref();
    app.close().then(
      () => {
        log.info({ signal, ms: Date.now() - started }, 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}

async function runPrimary(config: Config, log: Logger): Promise<void> {
  // Several processes share nothing but Postgres and Redis: the embedded database is single-process, and live
  // subscriptions only see other processes' events through Redis.
  if (!config.databaseUrl || !config.redisUrl) {
    process.stderr.write(
      'configuration error: WORKERS > 1 needs DATABASE_URL and REDIS_URL (the embedded database and in-process fan-out are single-process)\n',
    );
    process.exit(2);
  }
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 1 });
  const applied = await migrateLatest(db.knex);
  await warnUnlessTablesAnalyzed(db.knex, log);
  await db.close();
  log.info({ applied, workers: config.workers }, 'migrations applied; forking workers');

  let stopping = false;
  const fork = () => cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    log.error({ pid: worker.process.pid, code, signal }, 'worker died; starting another');
    setTimeout(fork, 1000).unref();
  });
  for (let i = 0; i < config.workers; i++) fork();

  onSignals((signal) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    const force = setTimeout(() => process.exit(1), SHUTDOWN_MS + 2000);
    force.unref();
    const check = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        clearInterval(check);
        log.info({ signal }, 'all workers stopped');
        process.exit(0);
      }
    }, 100);
  });
}

async function main(): Promise<void> {
  const config = readConfig();
  const log = createLogger(config.logLevel);
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, log);
  return runService(config, log.child({ pid: process.pid }));
}

main().catch((err: unknown) => {
  process.stderr.write(`nostrx failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
