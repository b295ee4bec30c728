// `npm run -s export -- ['{"kinds":[1]}'] [--out FILE] > FILE.jsonl`: writes every live stored event matching the
// NIP-01 filter (all of them without one), one JSON event per line, oldest first (core/transfer/export-events.ts),
// to stdout or --out. `-s` keeps npm's own banner lines out of stdout. Progress on stderr.
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { ConfigError, loadConfig } from './config.js';
import * as filter from './nips/filter.js';
import { exportEvents, exportFilterLimits } from './core/transfer/index.js';
import { openDatabase } from './store/db.js';
import { eventStoreExists } from './store/events.js';

class UsageError extends Error {}

const USAGE = `usage: npm run -s export -- ['{"authors":["<hex>"],"kinds":[1]}'] [--out FILE] > FILE.jsonl`;

function parseArgs(argv: readonly string[]): { filter: filter.Filter; out: string | undefined } {
  let raw: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') {
      out = argv[++i];
      if (out === undefined) throw new UsageError('--out needs a file name');
    } else if (raw === undefined && !a.startsWith('--')) raw = a;
    else throw new UsageError(`unexpected argument ${a}`);
  }
  if (raw === undefined) return { filter: {}, out };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new UsageError(`the filter is not valid JSON: ${raw.slice(0, 200)}`);
  }
  const parsed = filter.parseFilter(json, exportFilterLimits);
  if (!parsed.ok) throw new UsageError(`the filter is refused: ${parsed.rejection.message}`);
  return { filter: parsed.value, out };
}

function write(out: Writable, text: string): Promise<void> | undefined {
  if (out.write(text)) return undefined;
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      out.off('error', reject);
      resolve();
    };
    out.once('drain', onDrain);
    out.once('error', reject);
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`configuration error: ${err.message}`);
    throw err;
  }
  const out: Writable = args.out ? createWriteStream(args.out) : process.stdout;
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2 });
  // An export only reads: it does not create the store, and a store that was never created is named, not queried.
  if (!(await eventStoreExists(db.knex))) {
    await db.close();
    const where = config.databaseUrl ? 'DATABASE_URL' : `the embedded database in ${config.dataDir}`;
    throw new Error(`${where} holds no event store yet (\`npm start\` or \`npm run migrate\` creates it)`);
  }
  const startedAt = Date.now();
  let n = 0;
  const progress = setInterval(() => process.stderr.write(`export: ${n.toLocaleString('en-US')} events\n`), 5000);
  progress.unref();
  try {
    let chunk = '';
    for await (const ev of exportEvents(db.knex, args.filter)) {
      n++;
      chunk += ev.json + '\n';
      if (chunk.length < 65536) continue;
      await write(out, chunk);
      chunk = '';
    }
    if (chunk) await write(out, chunk);
    if (args.out)
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } finally {
    clearInterval(progress);
    await db.close();
  }
  const seconds = (Date.now() - startedAt) / 1000;
  process.stderr.write(
    `export: ${n.toLocaleString('en-US')} events in ${seconds.toFixed(1)} s${args.out ? ` to ${args.out}` : ''}\n`,
  );
}

// A reader that went away (`| head`) ends the export quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(err instanceof UsageError ? `export: ${message}\n${USAGE}\n` : `export: failed: ${message}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
