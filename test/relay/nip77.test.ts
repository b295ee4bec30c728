// NIP-77 on the relay, with two real clients over a real WebSocket: nostr-tools' NegentropySync (the initiator of
// Negentropy v1) and NDK's sync package. Each client holds part of what the relay holds plus events of its own; the
// reconciliation must tell both sides exactly. Then the limits: too many records (`blocked:`), an idle session
// (`closed:`), a malformed message (`invalid:`), the filter rules of REQ, and NIP-11 listing 77 only when it is on.
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import type { Filter as ToolsFilter } from 'nostr-tools/filter';
import { pino } from 'pino';
import type { App } from '../../src/app.js';
import { verifyHere } from '../../src/core/admission/verifier-pool.js';
import { importEvents } from '../../src/core/transfer/index.js';
import type { NostrEvent } from '../../src/nips/nip01.js';
import { relayInfo } from '../../src/relay/info.js';
import { attachRelay } from '../../src/relay/server.js';
import { startTestApp } from '../helpers/app.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';

// nostr-tools' nip77 module is outside its export map: loaded by file path, as src/nips/nip77.ts does
interface SyncLib {
  NegentropyStorageVector: new () => { insert(ts: number, id: string): void; seal(): void };
  NegentropySync: new (
    relay: Relay,
    storage: unknown,
    filter: ToolsFilter,
    params: { onhave?: (id: string) => void; onneed?: (id: string) => void; onclose?: (reason?: string) => void },
  ) => { start(): Promise<void> };
}
const entry = createRequire(import.meta.url).resolve('nostr-tools');
const tools = (await import(pathToFileURL(path.join(path.dirname(entry), '..', 'esm', 'nip77.js')).href)) as SyncLib;

const log = pino({ level: 'silent' });
const now = Math.floor(Date.now() / 1000);

const app = await startTestApp(t, { env: { NIP77_MAX_RECORDS: '400', NIP77_IDLE_SECONDS: '2', POST_KINDS: '40000' } });

/** Stores events straight into the relay's database (the import path: the relay's rules, no quota). */
async function store(target: App, events: readonly NostrEvent[]): Promise<void> {
  const lines = (async function* () {
    for (const ev of events) yield JSON.stringify(ev);
  })();
  const limits = {
    maxContentLength: 10_000,
    maxEventTags: 100,
    maxTagElementLength: 1024,
    createdAtPastSeconds: Infinity,
    createdAtFutureSeconds: 900,
  };
  const r = await importEvents(lines, { db: target.db.knex, log, verify: verifyHere, limits });
  if (r.counts.imported !== events.length) throw new Error(`stored ${r.counts.imported} of ${events.length}`);
}

function notes(k: Key, n: number, from = 0): NostrEvent[] {
  return Array.from({ length: n }, (_, i) =>
    buildEvent(k.sk, { content: `note ${from + i}`, created_at: now - 5000 + ((from + i) % 7) * 10 }),
  );
}

/** Runs nostr-tools' initiator with `mine` against the relay for `filter`: the ids each side lacks. */
async function reconcileWithTools(
  url: string,
  mine: readonly NostrEvent[],
  filter: ToolsFilter,
): Promise<{ have: Set<string>; need: Set<string>; reason?: string }> {
  const relay = await Relay.connect(url);
  try {
    const storage = new tools.NegentropyStorageVector();
    for (const ev of mine) storage.insert(ev.created_at, ev.id);
    storage.seal();
    const have = new Set<string>();
    const need = new Set<string>();
    const reason = await new Promise<string | undefined>((resolve) => {
      const sync = new tools.NegentropySync(relay, storage, filter, {
        onhave: (id) => have.add(id),
        onneed: (id) => need.add(id),
        onclose: resolve,
      });
      void sync.start();
    });
    return { have, need, ...(reason ? { reason } : {}) };
  } finally {
    relay.close();
  }
}

const ids = (events: readonly NostrEvent[]) => new Set(events.map((e) => e.id));

t.test("nostr-tools' initiator learns what each side lacks, over several rounds", async (t) => {
  const alice = newKey();
  const relayOnly = notes(alice, 120, 0);
  const shared = notes(alice, 200, 1000);
  const clientOnly = notes(alice, 40, 2000);
  await store(app, [...relayOnly, ...shared]);
  const r = await reconcileWithTools(app.relayUrl, [...shared, ...clientOnly], { authors: [alice.pk] });
  t.equal(r.reason, undefined, 'the session ended with the reconciliation done, not an error');
  t.same(r.need, ids(relayOnly), 'needs exactly what only the relay holds');
  t.same(r.have, ids(clientOnly), 'has exactly what the relay lacks');

  const same = await reconcileWithTools(app.relayUrl, [...relayOnly, ...shared], { authors: [alice.pk] });
  t.same([same.need.size, same.have.size], [0, 0], 'an identical set: nothing either way');
});

t.test('the filter decides the set, by the rules of REQ; deleted events are not in it', async (t) => {
  const bob = newKey();
  const kept = notes(bob, 5);
  const gone = buildEvent(bob.sk, { content: 'to be deleted', created_at: now - 100 });
  const deletion = buildEvent(bob.sk, { kind: 5, created_at: now - 50, tags: [['e', gone.id]] });
  await store(app, [...kept, gone, deletion]);
  const r = await reconcileWithTools(app.relayUrl, [], { authors: [bob.pk], kinds: [1] });
  t.same(r.need, ids(kept), 'kind 1 only, and not the deleted note');

  const raw = await RawClient.connect(app.relayUrl);
  t.teardown(() => raw.ws.close());
  raw.send(['NEG-OPEN', 'bad', { authors: ['abc'] }, '6100']);
  const refused = await raw.nextOfType('NEG-ERR');
  t.match(
    refused,
    ['NEG-ERR', 'bad', /^invalid: filter "authors" has a prefix/],
    'a filter REQ refuses is refused here too',
  );
});

t.test('NDK sync, a second client, gets the same answer and fetches what it lacks', async (t) => {
  const carol = newKey();
  const relayOnly = notes(carol, 30, 0);
  const shared = notes(carol, 50, 100);
  const clientOnly = notes(carol, 10, 200);
  await store(app, [...relayOnly, ...shared]);

  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/ndk-sync-client.ts'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill());
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.stdin.end(
    JSON.stringify({ relayUrl: app.relayUrl, filter: { authors: [carol.pk] }, cached: [...shared, ...clientOnly] }),
  );
  t.equal(await exited, 0, 'the NDK client finished');
  const r = JSON.parse(out) as { need: string[]; have: string[]; fetched: string[] };
  const result = { need: new Set(r.need), have: new Set(r.have), events: r.fetched.map((id) => ({ id })) };
  t.same(result.need, ids(relayOnly), 'NDK needs exactly what only the relay holds');
  t.same(result.have, ids(clientOnly), 'and has exactly what the relay lacks');
  t.same(new Set(result.events.map((e) => e.id)), ids(relayOnly), 'it fetched those events with a REQ');
});

t.test('limits: records per session, idle sessions, malformed messages, unknown sessions', async (t) => {
  const dave = newKey();
  const erin = newKey();
  await store(app, [...notes(dave, 390), ...notes(erin, 20)]);
  const raw = await RawClient.connect(app.relayUrl);
  t.teardown(() => raw.ws.close());

  raw.send(['NEG-OPEN', 'big', { authors: [dave.pk, erin.pk] }, '61']);
  t.match(await raw.nextOfType('NEG-ERR'), ['NEG-ERR', 'big', /^blocked: this filter matches more than 400 events/]);

  raw.send(['NEG-OPEN', 'idle', { authors: [erin.pk] }, '61']);
  t.match(await raw.nextOfType('NEG-MSG'), ['NEG-MSG', 'idle', /^61/]);
  t.match(
    await raw.nextOfType('NEG-ERR', 10_000),
    ['NEG-ERR', 'idle', /^closed: the negentropy session was idle for 2 s/],
    'an idle session is closed and the client told',
  );
  raw.send(['NEG-MSG', 'idle', '61']);
  t.match(await raw.nextOfType('NEG-ERR'), ['NEG-ERR', 'idle', /^closed: no open negentropy session with this id/]);

  raw.send(['NEG-OPEN', 'hex', { authors: [erin.pk] }, 'zz']);
  t.match(await raw.nextOfType('NEG-ERR'), ['NEG-ERR', 'hex', /^invalid: the negentropy message is not hex/]);
  raw.send(['NEG-OPEN', 'short', { authors: [erin.pk] }, '6101']);
  t.match(await raw.nextOfType('NEG-ERR'), ['NEG-ERR', 'short', /^invalid: /], 'a truncated message');
  raw.send(['NEG-OPEN', 'v2', { authors: [erin.pk] }, '62']);
  t.same(
    await raw.nextOfType('NEG-MSG'),
    ['NEG-MSG', 'v2', '61'],
    'another protocol version: the relay answers with the one it speaks',
  );
  raw.send(['NEG-CLOSE', 'v2']);
  raw.send(['NEG-MSG', 'v2', '61']);
  t.match(await raw.nextOfType('NEG-ERR'), ['NEG-ERR', 'v2', /^closed: /], 'NEG-CLOSE ended it');
});

t.test('NIP-11 lists 77 only when negentropy is on; off, NEG-OPEN is refused', async (t) => {
  const doc = (await (await fetch(app.url, { headers: { Accept: 'application/nostr+json' } })).json()) as {
    supported_nips: number[];
  };
  t.ok(doc.supported_nips.includes(77));
  t.notOk(relayInfo({ ...app.config, nip77Enabled: false }, [], '0').supported_nips.includes(77));

  // the same relay face without negentropy, on a port of its own
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const off = attachRelay(server, {
    log,
    admit: app.admit,
    queries: app.queries,
    fanout: app.fanout,
    relayUrl: `ws://127.0.0.1:${port}/`,
    path: '/',
    authWindowSeconds: 600,
    maxConnectionsPerIp: 100,
    clientIp: () => '127.0.0.1',
    limits: {
      maxMessageBytes: 131072,
      maxSubscriptions: 20,
      maxBufferedBytes: 1 << 22,
      maxQueued: 64,
      maxSubIdLength: 64,
      maxFilters: 10,
      maxLimit: 500,
      defaultLimit: 100,
      maxFilterValues: 1000,
    },
  });
  t.teardown(async () => {
    await off.close(1001, 'test over', 100);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const raw = await RawClient.connect(`ws://127.0.0.1:${port}/`);
  t.teardown(() => raw.ws.close());
  raw.send(['NEG-OPEN', 'x', {}, '61']);
  t.match(await raw.nextOfType('NEG-ERR'), ['NEG-ERR', 'x', /^unsupported: negentropy \(NIP-77\) is not enabled/]);
});
