// Import and export of JSONL dumps, on PostgreSQL and on PGlite: what is imported, what is refused and why (the
// report), the relay's rules for replaceable, addressable and deleted events, nothing charged or queued without
// --forward, outbox rows with it, a resumed import that ends as one run would, and an export that reads back what
// is served. The command-line tools run once as an operator runs them (PostgreSQL).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import t from 'tap';
import { pino } from 'pino';
import * as nip01 from '../../../src/nips/nip01.js';
import { verifyHere } from '../../../src/core/admission/verifier-pool.js';
import { createOutboxStage } from '../../../src/core/forwarding/enqueue.js';
import { createPlans } from '../../../src/core/quota/plans.js';
import {
  exportEvents,
  importEvents,
  type BadLine,
  type ImportCounts,
  type ImportDeps,
} from '../../../src/core/transfer/index.js';
import { createTestDatabase, onBothDatabases } from '../../helpers/db.js';
import { explainExportPage } from '../../../src/store/events.js';
import { findEventRecord } from '../../../src/store/event-records.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';

await nip01.initVerifier();
const log = pino({ level: 'silent' });
const now = Math.floor(Date.now() / 1000);
const limits: nip01.EventLimits = {
  maxContentLength: 1000,
  maxEventTags: 100,
  maxTagElementLength: 1024,
  createdAtPastSeconds: Infinity,
  createdAtFutureSeconds: 900,
};

async function* linesOf(lines: readonly string[]): AsyncGenerator<string> {
  for (const l of lines) yield l;
}

function depsFor(db: Knex, extra: Partial<ImportDeps> = {}): ImportDeps {
  return { db, log, verify: verifyHere, limits, ...extra };
}

/** A dump with one of each case; `expect` says what importing it must give. */
function sampleDump(alice: Key, bob: Key) {
  const noteA = buildEvent(alice.sk, { content: 'note A', created_at: now - 500, tags: [['t', 'x']] });
  const noteB = buildEvent(alice.sk, { content: 'note B', created_at: now - 400 });
  const noteC = buildEvent(bob.sk, { content: 'note C, deleted before it comes', created_at: now - 300 });
  const deleteC = buildEvent(bob.sk, { kind: 5, created_at: now - 200, tags: [['e', noteC.id]] });
  const deleteB = buildEvent(alice.sk, { kind: 5, created_at: now - 100, tags: [['e', noteB.id]] });
  const profileOld = buildEvent(alice.sk, { kind: 0, content: '{"name":"old"}', created_at: now - 1000 });
  const profileNew = buildEvent(alice.sk, { kind: 0, content: '{"name":"new"}', created_at: now - 900 });
  const articleNew = buildEvent(bob.sk, { kind: 30023, content: 'v2', created_at: now - 50, tags: [['d', 'post']] });
  const articleOld = buildEvent(bob.sk, { kind: 30023, content: 'v1', created_at: now - 60, tags: [['d', 'post']] });
  const forged = { ...buildEvent(bob.sk, { content: 'signed' }), content: 'changed after signing' };
  const badSig = { ...buildEvent(bob.sk, { content: 'bad sig' }) };
  badSig.sig = (badSig.sig[0] === '0' ? '1' : '0') + badSig.sig.slice(1);
  const ephemeral = buildEvent(bob.sk, { kind: 20001, content: 'typing…' });
  const expired = buildEvent(bob.sk, { content: 'gone', tags: [['expiration', String(now - 10)]] });
  const lines = [
    JSON.stringify(noteA), // 1
    JSON.stringify(profileNew), // 2
    JSON.stringify(noteA), // 3 duplicate in the file
    '{"id": not json', // 4
    '', // 5 blank: skipped
    JSON.stringify(deleteC), // 6
    JSON.stringify(profileOld), // 7 superseded (an older version, after the newer one)
    JSON.stringify(forged), // 8
    JSON.stringify(noteB), // 9
    JSON.stringify(noteC), // 10 deleted by its author (line 6)
    JSON.stringify(articleOld), // 11 superseded by line 12 (the same batch in every test)
    JSON.stringify(articleNew), // 12 replaces line 11
    JSON.stringify(badSig), // 13
    JSON.stringify(ephemeral), // 14
    JSON.stringify(expired), // 15
    JSON.stringify(deleteB), // 16 deletes line 9
  ];
  return {
    lines,
    authors: [alice.pk, bob.pk],
    live: [noteA.id, profileNew.id, deleteC.id, articleNew.id, deleteB.id].sort(),
    counts: { lines: 16, imported: 6, duplicate: 1, superseded: 2, rejected: 6 } satisfies ImportCounts,
    badLines: [4, 8, 10, 13, 14, 15],
  };
}

/** The served events of the dump's authors (other tests share the database). */
async function liveIds(db: Knex, dump: { authors: string[] }): Promise<string[]> {
  const out: string[] = [];
  for await (const ev of exportEvents(db, { authors: dump.authors }, { pageSize: 2 })) out.push(ev.id);
  return out.sort();
}

onBothDatabases(t, async (t, db) => {
  t.test('imports by the relay rules, counts each outcome and reports each refused line', async (t) => {
    const dump = sampleDump(newKey(), newKey());
    const bad: BadLine[] = [];
    const summary = await importEvents(linesOf(dump.lines), depsFor(db), {
      batchSize: 3,
      onRejected: (b) => bad.push(b),
    });
    t.same(summary.counts, dump.counts);
    t.equal(summary.interrupted, false);
    t.same(
      bad.map((b) => b.line),
      dump.badLines,
      'every refused line, in order, with its number',
    );
    t.match(
      bad.map((b) => b.reason),
      [
        /^invalid: the line is not valid JSON/,
        /^invalid: id does not match/,
        /^blocked: this event was deleted by its author/,
        /^invalid: signature is invalid/,
        /^invalid: kind 20001 is ephemeral/,
        /^invalid: this event has expired/,
      ],
    );
    t.same(
      await liveIds(db, dump),
      dump.live,
      'served: the newest versions, not the deleted note, the deletions themselves',
    );
    const quotas = (await db('user_quotas').count({ n: '*' })) as { n: string | number }[];
    t.equal(Number(quotas[0]?.n), 0, 'no quota was charged');
    const outbox = (await db('relay_publishes').count({ n: '*' })) as { n: string | number }[];
    t.equal(Number(outbox[0]?.n), 0, 'nothing was queued for forwarding');
    const rows = (await db('nostr_events').distinct('status', 'failure_reason', 'source_platform')) as {
      status: string;
      failure_reason: string | null;
      source_platform: string;
    }[];
    t.same(
      rows,
      [{ status: 'published', failure_reason: null, source_platform: 'import' }],
      'each row says by its source why it was not forwarded, with no text of its own',
    );
    const record = await findEventRecord(db, dump.live[0]!);
    t.match(
      record,
      {
        status: 'not_forwarded',
        failureReason: 'not forwarded: imported without --forward',
        source: { platform: 'import' },
      },
      'and its record says it in words',
    );

    const again = await importEvents(linesOf(dump.lines), depsFor(db), { batchSize: 5 });
    t.equal(again.counts.imported, 0, 'a second import of the same dump stores nothing');
    t.same(await liveIds(db, dump), dump.live);
  });

  t.test(
    'an address its author deleted (NIP-09 a tag) refuses the versions up to the deletion, not later ones',
    async (t) => {
      const k = newKey();
      const deletion = buildEvent(k.sk, { kind: 5, created_at: now - 100, tags: [['a', `30023:${k.pk}:doc`]] });
      const older = buildEvent(k.sk, { kind: 30023, created_at: now - 200, tags: [['d', 'doc']], content: 'v1' });
      const newer = buildEvent(k.sk, { kind: 30023, created_at: now - 50, tags: [['d', 'doc']], content: 'v2' });
      const bad: BadLine[] = [];
      const r = await importEvents(linesOf([deletion, older, newer].map((e) => JSON.stringify(e))), depsFor(db), {
        batchSize: 1,
        onRejected: (b) => bad.push(b),
      });
      t.same(r.counts, { lines: 3, imported: 2, duplicate: 0, superseded: 0, rejected: 1 });
      t.same(
        bad.map((b) => [b.line, b.reason]),
        [[2, 'blocked: this event was deleted by its author (NIP-09)']],
      );
      t.same(await liveIds(db, { authors: [k.pk] }), [deletion.id, newer.id].sort());
    },
  );

  t.test("a batch's deletions are stored together, each as the relay would take it in turn", async (t) => {
    const k = newKey();
    const note = buildEvent(k.sk, { content: 'twice deleted', created_at: now - 500 });
    const kept = buildEvent(k.sk, { content: 'kept', created_at: now - 490 });
    const byId = buildEvent(k.sk, { kind: 5, created_at: now - 100, tags: [['e', note.id]] });
    const again = buildEvent(k.sk, { kind: 5, created_at: now - 90, tags: [['e', note.id]] });
    const later = buildEvent(k.sk, { kind: 5, created_at: now - 80, tags: [['e', kept.id]] });
    // aimed at `later`, on an earlier line: no effect (NIP-09), so `later` is stored and removes `kept`
    const atDeletion = buildEvent(k.sk, { kind: 5, created_at: now - 70, tags: [['e', later.id]] });
    const lines = [note, kept, byId, atDeletion, again, later].map((e) => JSON.stringify(e));
    const bad: BadLine[] = [];
    const r = await importEvents(linesOf(lines), depsFor(db), { batchSize: 100, onRejected: (b) => bad.push(b) });
    t.same(r.counts, { lines: 6, imported: 6, duplicate: 0, superseded: 0, rejected: 0 });
    t.same(bad, []);
    t.same(
      await liveIds(db, { authors: [k.pk] }),
      [byId.id, again.id, later.id, atDeletion.id].sort(),
      'both notes removed, every deletion served',
    );
    const reasons = (await db('nostr_events')
      .whereIn('event_id', [note.id, kept.id])
      .distinct('removed_reason')
      .pluck('removed_reason')) as string[];
    t.same(reasons, ['deleted']);
    const repeat = await importEvents(linesOf(lines), depsFor(db), { batchSize: 100 });
    t.same(
      repeat.counts,
      { lines: 6, imported: 0, duplicate: 4, superseded: 0, rejected: 2 },
      'again: the deletions are duplicates, the notes deleted',
    );
  });

  t.test(
    "a batch's deletions whose transaction fails are stored one by one, nothing of the failed one kept",
    async (t) => {
      // A real failure of the batched removal, staged in this database: a statement that removes more than one event
      // at once is refused, as a deadlock with the relay's own deletions would fail it; one at a time passes.
      await db.raw(`CREATE FUNCTION test_one_removal_at_a_time() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF (SELECT count(*) FROM changed WHERE removed_at IS NOT NULL) > 1 THEN
          RAISE EXCEPTION 'test: more than one removal in a statement';
        END IF;
        RETURN NULL;
      END $$`);
      await db.raw(`CREATE TRIGGER test_one_removal_at_a_time AFTER UPDATE ON nostr_events
      REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION test_one_removal_at_a_time()`);
      t.teardown(async () => {
        await db.raw('DROP TRIGGER test_one_removal_at_a_time ON nostr_events');
        await db.raw('DROP FUNCTION test_one_removal_at_a_time()');
      });
      const k = newKey();
      const notes = [0, 1, 2].map((i) => buildEvent(k.sk, { content: `note ${i}`, created_at: now - 1000 + i }));
      const deletions = notes.map((note, i) =>
        buildEvent(k.sk, { kind: 5, created_at: now - 500 + i, tags: [['e', note.id]] }),
      );
      const warned: { msg: string; events?: number }[] = [];
      const watching = pino(
        { level: 'warn' },
        { write: (line: string) => void warned.push(JSON.parse(line) as (typeof warned)[number]) },
      );
      const r = await importEvents(
        linesOf([...notes, ...deletions].map((e) => JSON.stringify(e))),
        depsFor(db, { log: watching }),
        { batchSize: 100 },
      );
      t.same(
        warned.map((w) => [w.msg, w.events]),
        [['an import transaction failed; storing its events one by one', 3]],
        'the failed transaction was the deletions',
      );
      t.same(r.counts, { lines: 6, imported: 6, duplicate: 0, superseded: 0, rejected: 0 }, 'each counted once');
      t.same(await liveIds(db, { authors: [k.pk] }), deletions.map((d) => d.id).sort(), 'every note removed');
      const rows = (await db('nostr_events').where({ pubkey: k.pk }).count('* as n').first()) as { n: string | number };
      t.equal(Number(rows.n), 6, 'one row per event: the failed transaction left none behind');
    },
  );

  t.test("a batch's deletions cost the same statements however many there are", async (t) => {
    const statementsFor = async (n: number): Promise<number> => {
      const k = newKey();
      const notes = Array.from({ length: n }, (_, i) =>
        buildEvent(k.sk, { content: `note ${i}`, created_at: now - 1000 + i }),
      );
      const deletions = notes.map((note, i) =>
        buildEvent(k.sk, { kind: 5, created_at: now - 500 + i, tags: [['e', note.id]] }),
      );
      let sent = 0;
      const count = () => void sent++;
      db.on('query', count);
      try {
        const r = await importEvents(linesOf([...notes, ...deletions].map((e) => JSON.stringify(e))), depsFor(db), {
          batchSize: 1000,
        });
        t.equal(r.counts.imported, 2 * n);
      } finally {
        db.off('query', count);
      }
      t.same(await liveIds(db, { authors: [k.pk] }), deletions.map((d) => d.id).sort(), 'every note removed');
      return sent;
    };
    t.equal(await statementsFor(20), await statementsFor(2));
  });

  t.test('an interrupted import resumed after its checkpoint ends as one run would', async (t) => {
    const dump = sampleDump(newKey(), newKey());
    const abort = new AbortController();
    const bad: BadLine[] = [];
    let checkpoint = { line: 0, counts: undefined as ImportCounts | undefined };
    const first = await importEvents(linesOf(dump.lines), depsFor(db), {
      batchSize: 4,
      signal: abort.signal,
      onRejected: (b) => bad.push(b),
      onCommitted: (line, counts) => {
        checkpoint = { line, counts: { ...counts } };
        abort.abort(); // stop after the first committed batch
      },
    });
    t.equal(first.interrupted, true);
    t.equal(checkpoint.line, 4);
    const second = await importEvents(linesOf(dump.lines), depsFor(db), {
      batchSize: 4,
      resumeAfter: checkpoint.line,
      ...(checkpoint.counts ? { counts: checkpoint.counts } : {}),
      onRejected: (b) => bad.push(b),
    });
    t.same(second.counts, dump.counts, 'the counts of both runs add up to those of one run');
    t.same(
      bad.map((b) => b.line),
      dump.badLines,
      'no refused line is reported twice',
    );
    t.same(await liveIds(db, dump), dump.live);
  });

  t.test('with --forward, each imported event gets its outbox rows', async (t) => {
    const dump = sampleDump(newKey(), newKey());
    const config = { upstreamRelays: ['ws://127.0.0.1:9/'], allowPrivateRelays: true, maxCustomRelays: 10 };
    const forwarding = createOutboxStage({ config, log, plans: createPlans(db) });
    const summary = await importEvents(linesOf(dump.lines), depsFor(db, { forwarding }), { batchSize: 3 });
    t.equal(summary.counts.imported, 6);
    const queued = (await db('relay_publishes as p')
      .join('nostr_events as e', 'e.id', 'p.event_id')
      .whereIn('e.event_id', dump.live.concat())
      .select('e.event_id', 'p.relay_url', 'p.status')) as { event_id: string; relay_url: string; status: string }[];
    t.equal(new Set(queued.map((q) => q.event_id)).size, dump.live.length, 'every served event is queued');
    t.ok(queued.every((q) => q.relay_url === 'ws://127.0.0.1:9/' && q.status === 'pending'));
  });

  t.test('export: every served event matching the filter, oldest first, capped by its limit', async (t) => {
    const k = newKey();
    const events = Array.from({ length: 7 }, (_, i) =>
      buildEvent(k.sk, { content: `e${i}`, created_at: now - 1000 + Math.floor(i / 2) }),
    );
    await importEvents(linesOf(events.map((e) => JSON.stringify(e))), depsFor(db));
    const got: nip01.NostrEvent[] = [];
    for await (const ev of exportEvents(db, { authors: [k.pk] }, { pageSize: 2 })) {
      t.equal(ev.id, (JSON.parse(ev.json) as nip01.NostrEvent).id);
      got.push(JSON.parse(ev.json) as nip01.NostrEvent);
    }
    t.equal(got.length, 7);
    t.same(new Set(got.map((e) => e.id)), new Set(events.map((e) => e.id)));
    for (let i = 1; i < got.length; i++) {
      const [a, b] = [got[i - 1]!, got[i]!];
      t.ok(
        a.created_at < b.created_at || (a.created_at === b.created_at && a.id > b.id),
        'in export order, each once across pages',
      );
    }
    t.same(
      got[0],
      events.find((e) => e.id === got[0]!.id),
      'exactly as signed',
    );
    const limited: string[] = [];
    for await (const ev of exportEvents(db, { authors: [k.pk], limit: 3 }, { pageSize: 2 })) limited.push(ev.id);
    t.same(
      limited,
      got.slice(0, 3).map((e) => e.id),
    );
  });
});

t.test('an export page after a cursor starts its index scan at the cursor, not at the oldest event', async (t) => {
  // a scan from the oldest event, filtering out what precedes the cursor, reads the whole store again for each page:
  // quadratic, ~2.5 s a page in the middle of a million events. With sequential scans off, the small table is read
  // along an index as a large one is, and the plan must not filter out the events before the cursor.
  const { knex: db } = await createTestDatabase(t);
  const k = newKey();
  const now = Math.floor(Date.now() / 1000);
  const events = Array.from({ length: 300 }, (_, i) =>
    buildEvent(k.sk, { content: `e${i}`, created_at: now - 1000 + Math.floor(i / 2) }),
  );
  await importEvents(linesOf(events.map((e) => JSON.stringify(e))), depsFor(db));
  const all: string[] = [];
  for await (const ev of exportEvents(db, { authors: [k.pk] }, { pageSize: 50 })) all.push(ev.id);
  t.equal(all.length, 300);
  const at = events.find((e) => e.id === all[289])!;
  const plan = await db.transaction(async (trx) => {
    await trx.raw('SET LOCAL enable_seqscan = off');
    return explainExportPage(trx, { authors: [k.pk] }, { createdAt: at.created_at, id: at.id }, 5, now);
  });
  const text = plan.join('\n');
  t.match(text, /Index Cond: .*created_at_nostr >=/, `the cursor bounds the index scan:\n${text}`);
  const removed = [...text.matchAll(/Rows Removed by Filter: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  t.ok(removed < 5, `${removed} rows read and filtered out`);
});

/** Runs a command-line tool of ours from source, as `npm run` runs it built. */
function run(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('the command-line tools: import with a report, resume from a state file, export to a file', async (t) => {
  const db = await createTestDatabase(t);
  const dir = mkdtempSync(path.join(tmpdir(), 'nostrx-import-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dump = sampleDump(newKey(), newKey());
  const file = path.join(dir, 'dump.jsonl');
  writeFileSync(file, dump.lines.join('\n') + '\n');
  const env = { DATABASE_URL: db.url, VERIFY_THREADS: '1' };

  // as if an earlier run had committed lines 1–4 and stopped: the tool resumes after them
  const first = await run('src/import-cli.ts', [file, '--batch', '4'], env);
  t.equal(first.code, 0, first.stderr);
  const summary = JSON.parse(first.stdout) as ImportCounts & { interrupted: boolean; report: string };
  t.match(summary, { ...dump.counts, interrupted: false, report: `${file}.rejected.jsonl` });
  const report = readFileSync(`${file}.rejected.jsonl`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as BadLine);
  t.same(
    report.map((b) => b.line),
    dump.badLines,
    'the report file lists the refused lines',
  );
  t.notOk(existsSync(`${file}.import-state.json`), 'a finished import leaves no state behind');

  const other = sampleDump(newKey(), newKey());
  const second = path.join(dir, 'second.jsonl');
  writeFileSync(second, other.lines.join('\n') + '\n');
  const done: ImportCounts = { lines: 4, imported: 2, duplicate: 1, superseded: 0, rejected: 1 };
  writeFileSync(
    `${second}.import-state.json`,
    JSON.stringify({ input: second, line: 4, counts: done, updatedAt: new Date().toISOString() }),
  );
  const resumed = await run('src/import-cli.ts', [second], env);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stderr, /resuming after line 4/);
  t.match(
    JSON.parse(resumed.stdout),
    { lines: 16, imported: 2 + 5, rejected: 1 + 5 },
    'lines 1–4 were not read again; their counts carried on',
  );

  const out = path.join(dir, 'export.jsonl');
  const exported = await run('src/export-cli.ts', [JSON.stringify({ kinds: [0, 1] }), '--out', out], env);
  t.equal(exported.code, 0, exported.stderr);
  const lines = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as nip01.NostrEvent);
  t.ok(lines.length > 0 && lines.every((e) => e.kind === 0 || e.kind === 1), 'only the kinds asked for');
  t.ok(
    lines.every((e) => nip01.verifySignature(e).ok),
    'exactly as signed',
  );

  const refused = await run('src/export-cli.ts', ['{"kinds":"one"}'], env);
  t.equal(refused.code, 2);
  t.match(refused.stderr, /the filter is refused: invalid: filter "kinds" must be an array/);

  // a new user's first try, before the service ever ran: a clear answer, nothing created
  const empty = mkdtempSync(path.join(tmpdir(), 'nostrx-export-empty-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const unmigrated = await run('src/export-cli.ts', [], { ...env, DATABASE_URL: '', DATA_DIR: empty });
  t.equal(unmigrated.code, 1);
  t.match(unmigrated.stderr, /the embedded database in .* holds no event store yet \(`npm start` or `npm run migrate`/);
  t.equal(unmigrated.stdout, '', 'nothing exported');
});
