// `npm run import -- FILE.jsonl [--forward] [--report FILE] [--state FILE] [--restart] [--batch N]` (FILE `-` or none:
// stdin). Imports one signed event per line by the relay's rules (core/transfer/import-events.ts) into the database
// of the configuration (DATABASE_URL, else the embedded one in DATA_DIR), with every signature verified on all
// cores. Refused lines go to the report file (one JSON line each: line, reason, id); after every committed batch
// the state file records the last committed line, so an interrupted import (Ctrl-C, a crash) started again with
// the same command resumes after it. Progress on stderr, a summary JSON line on stdout at the end.
import {
  appendFileSync,
  createReadStream,
  existsSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ConfigError, loadConfig, verifyThreadsOf, type Config } from './config.js';
import { createLogger } from './log.js';
import * as nip01 from './nips/nip01.js';
import { createBans } from './core/moderation/index.js';
import { createOutboxStage } from './core/forwarding/index.js';
import { createPlans } from './core/quota/index.js';
import { createVerifierPool } from './core/admission/index.js';
import { importEvents, noCounts, type BadLine, type ImportCounts } from './core/transfer/index.js';
import { openDatabase } from './store/db.js';
import { migrateLatest } from './store/migrate.js';
import { ensureMonthlyPartitions } from './store/partitions.js';

interface Args {
  readonly input: string;
  readonly forward: boolean;
  readonly report: string;
  readonly state: string;
  readonly restart: boolean;
  readonly batch: number;
}

const USAGE =
  'usage: npm run import -- [FILE.jsonl | -] [--forward] [--report FILE] [--state FILE] [--restart] [--batch N]';

function parseArgs(argv: readonly string[]): Args {
  let input: string | undefined;
  const o = { forward: false, restart: false, report: '', state: '', batch: 2000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--forward') o.forward = true;
    else if (a === '--restart') o.restart = true;
    else if (a === '--report') o.report = value();
    else if (a === '--state') o.state = value();
    else if (a === '--batch') o.batch = Number(value());
    else if (a.startsWith('--') || input !== undefined) throw new UsageError(`unexpected argument ${a}`);
    else input = a;
  }
  if (!Number.isInteger(o.batch) || o.batch < 1 || o.batch > 100_000)
    throw new UsageError('--batch must be an integer from 1 to 100000');
  const file = input === undefined || input === '-' ? '-' : path.resolve(input);
  const base = file === '-' ? 'import' : file;
  return {
    ...o,
    input: file,
    report: o.report || `${base}.rejected.jsonl`,
    state: o.state || `${base}.import-state.json`,
  };
}

class UsageError extends Error {}

/** What the state file holds: the input, the last line whose batch is committed, and the counts up to it. */
interface State {
  readonly input: string;
  readonly line: number;
  readonly counts: ImportCounts;
  readonly updatedAt: string;
}

function readState(args: Args): State | undefined {
  if (args.restart || !existsSync(args.state)) return undefined;
  const state = JSON.parse(readFileSync(args.state, 'utf8')) as State;
  if (state.input !== args.input) {
    throw new UsageError(
      `the state file ${args.state} belongs to an import of ${state.input}; pass --restart to begin again, or --state FILE`,
    );
  }
  return state;
}

/** Written to a temporary file and renamed, so a crash leaves the old state or the new one, never half of one. */
function writeState(file: string, state: State): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(state) + '\n');
  renameSync(`${file}.tmp`, file);
}

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`configuration error: ${err.message}`);
    throw err;
  }
}

function progressLine(counts: ImportCounts, startLine: number, startedAt: number): string {
  const seconds = (Date.now() - startedAt) / 1000;
  const rate = seconds > 0 ? Math.round((counts.lines - startLine) / seconds) : 0;
  const n = (x: number) => x.toLocaleString('en-US');
  return `import: line ${n(counts.lines)} · ${n(rate)} lines/s · imported ${n(counts.imported)} · duplicate ${n(counts.duplicate)} · superseded ${n(counts.superseded)} · rejected ${n(counts.rejected)}`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const config = readConfig();
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 2);
  const state = readState(args);
  if (args.input !== '-' && !statSync(args.input).isFile()) throw new UsageError(`${args.input} is not a file`);
  if (!state) writeFileSync(args.report, '');

  const signatures = await nip01.initVerifier({ backend: config.verifyBackend });
  // every core by default (VERIFY_THREADS=-1 counts the cores for one process); VERIFY_THREADS=n asks for n
  const verifier = await createVerifierPool({
    threads: Math.max(1, verifyThreadsOf({ verifyThreads: config.verifyThreads, workers: 1 })),
    log,
    backend: signatures.backend,
  });
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolMax: Math.max(config.dbPoolMax, 12),
  });
  await migrateLatest(db.knex);
  await ensureMonthlyPartitions(db.knex, new Date());
  const bans = await createBans({ db: db.knex, log });
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const startedAt = Date.now();
  const startLine = state?.line ?? 0;
  let counts: ImportCounts = state?.counts ?? noCounts();
  const tty = process.stderr.isTTY;
  const progress = setInterval(
    () =>
      process.stderr.write(
        tty
          ? `\r${progressLine(counts, startLine, startedAt)}\u001b[K`
          : `${progressLine(counts, startLine, startedAt)}\n`,
      ),
    tty ? 500 : 5000,
  );
  progress.unref();
  try {
    if (startLine > 0) process.stderr.write(`import: resuming after line ${startLine} (from ${args.state})\n`);
    const lines = createInterface({
      input: args.input === '-' ? process.stdin : createReadStream(args.input),
      crlfDelay: Infinity,
    });
    let rejected: BadLine[] = [];
    const summary = await importEvents(
      lines,
      {
        db: db.knex,
        log,
        verify: verifier.verify,
        limits: {
          maxContentLength: config.maxContentLength,
          maxEventTags: config.maxEventTags,
          maxTagElementLength: config.maxTagElementLength,
          createdAtPastSeconds: Infinity,
          createdAtFutureSeconds: config.createdAtFutureSeconds,
        },
        checkBans: (ev) => bans.check(ev),
        ...(args.forward ? { forwarding: createOutboxStage({ config, log, plans: createPlans(db.knex) }) } : {}),
      },
      {
        resumeAfter: startLine,
        counts,
        batchSize: args.batch,
        signal: abort.signal,
        onRejected: (bad) => rejected.push(bad),
        onCommitted: (line, now) => {
          // the report first: a crash between the two repeats a batch's report lines, never loses them
          if (rejected.length > 0) appendFileSync(args.report, rejected.map((b) => JSON.stringify(b) + '\n').join(''));
          rejected = [];
          counts = { ...now };
          writeState(args.state, { input: args.input, line, counts, updatedAt: new Date().toISOString() });
        },
      },
    );
    lines.close();
    clearInterval(progress);
    const seconds = (Date.now() - startedAt) / 1000;
    process.stderr.write(
      `${tty ? '\r' : ''}${progressLine(summary.counts, startLine, startedAt)}${tty ? '\u001b[K' : ''}\n`,
    );
    if (summary.interrupted) {
      process.stderr.write(
        `import: interrupted after line ${summary.counts.lines}; run the same command again to resume (state in ${args.state})\n`,
      );
    } else if (existsSync(args.state)) rmSync(args.state);
    const perSecond = seconds > 0 ? Math.round((summary.counts.lines - startLine) / seconds) : 0;
    process.stdout.write(
      JSON.stringify({
        input: args.input,
        ...summary.counts,
        interrupted: summary.interrupted,
        seconds: Math.round(seconds * 10) / 10,
        linesPerSecond: perSecond,
        report: args.report,
      }) + '\n',
    );
    return summary.interrupted ? 130 : 0;
  } finally {
    clearInterval(progress);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await bans.close();
    await verifier.close();
    await db.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(err instanceof UsageError ? `import: ${message}\n${USAGE}\n` : `import: failed: ${message}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
