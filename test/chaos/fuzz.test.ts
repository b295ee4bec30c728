// Fuzzed relay frames and HTTP requests, property-based (fast-check): malformed JSON, wrong shapes, huge and odd
// values, and signed events with random kinds, tags and content, some of them tampered with after signing; HTTP
// requests with random methods, paths, headers and bodies, some signed with NIP-98 (right or wrong). Must hold: the
// service never crashes, never answers 5xx, every EVENT gets an OK (true only for what was stored), and no row is
// half-written (a stored event has exactly its indexed tags, and one outbox row per upstream relay).
// 300 frames and 300 requests in npm test, 3,000 and 3,000 in npm run chaos; a failure prints the seed to replay.
import t from 'tap';
import fc from 'fast-check';
import { finalizeEvent } from 'nostr-tools/pure';
import { ApiClient } from '../helpers/api.js';
import { startTestApp } from '../helpers/app.js';
import { figures, scale } from '../helpers/chaos.js';
import { newKey } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';
import { indexedTags } from '../../src/store/events.js';
import type { NostrEvent } from '../../src/nips/nip01.js';
import { storedTagValue } from '../helpers/tag-rows.js';

const UPSTREAM = 'ws://127.0.0.1:9/'; // never reached: the forwarder is off, only the outbox rows are checked
const app = await startTestApp(t, {
  // a webhook secret is set: without one every webhook is refused 503 on purpose (not configured)
  env: {
    FORWARD_ENABLED: 'false',
    UPSTREAM_RELAYS: UPSTREAM,
    ALLOW_PRIVATE_RELAYS: 'true',
    RATE_LIMIT_IP_PER_SECOND: '0',
    RATE_LIMIT_CONN_PER_SECOND: '0',
    PAYMENT_WEBHOOK_SECRET: 'fuzz',
  },
  plans: { basic: { daily: -1 } },
});
const db = app.db.knex;
const keys = [newKey(), newKey(), newKey()];

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', '\u0000', 'é', '😀', '\ud800', 'x'.repeat(2000)),
);
const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 53, -(2 ** 63), 1e308, Number.MAX_SAFE_INTEGER),
);
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    text,
    number,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(text, tie('value'), { maxKeys: 5 }),
  ),
})).value;
const tag = fc.array(fc.oneof(fc.constantFrom('e', 'p', 't', 'd', 'a', 'x', 'Z', 'expiration', '-', ''), text), {
  minLength: 0,
  maxLength: 4,
});
const kind = fc.oneof(
  { arbitrary: fc.constantFrom(0, 1, 1, 1, 3, 5, 6, 7, 16, 1984, 10002, 20000, 30023, 40000), weight: 6 },
  { arbitrary: fc.integer({ min: 0, max: 65535 }), weight: 2 },
  { arbitrary: fc.integer(), weight: 1 },
);

/** A signed event with random parts; `tamper` then breaks one field after signing (or nothing). */
const signedEvent = fc
  .record({
    key: fc.constantFrom(...keys),
    kind,
    tags: fc.array(tag, { maxLength: 6 }),
    content: text,
    age: fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: 100_000 }), weight: 4 },
      { arbitrary: fc.integer({ min: -2000, max: 0 }), weight: 1 },
    ),
    tamper: fc.constantFrom(
      'none',
      'none',
      'none',
      'id',
      'sig',
      'content',
      'pubkey',
      'created_at',
      'extra-field',
      'missing-field',
    ),
  })
  .map(({ key, kind: k, tags, content, age, tamper }) => {
    let ev: Record<string, unknown>;
    try {
      ev = {
        ...finalizeEvent(
          { kind: k, tags: tags as string[][], content, created_at: Math.floor(Date.now() / 1000) - age },
          key.sk,
        ),
      };
    } catch {
      ev = { kind: k, tags, content };
    }
    if (tamper === 'id') ev.id = 'f'.repeat(64);
    if (tamper === 'sig') ev.sig = '0'.repeat(128);
    if (tamper === 'content') ev.content = `${String(ev.content)}!`;
    if (tamper === 'pubkey') ev.pubkey = keys[0]!.pk === ev.pubkey ? keys[1]!.pk : keys[0]!.pk;
    if (tamper === 'created_at') ev.created_at = 'yesterday';
    if (tamper === 'extra-field') ev.extra = 1;
    if (tamper === 'missing-field') delete ev.sig;
    return ev;
  });

const frame = fc.oneof(
  { arbitrary: signedEvent.map((ev) => JSON.stringify(['EVENT', ev])), weight: 6 },
  json.map((v) => JSON.stringify(['EVENT', v])),
  fc.tuple(text, fc.array(json, { maxLength: 4 })).map(([id, filters]) => JSON.stringify(['REQ', id, ...filters])),
  fc.tuple(text, fc.array(json, { maxLength: 3 })).map(([id, filters]) => JSON.stringify(['COUNT', id, ...filters])),
  json.map((v) => JSON.stringify(['CLOSE', v])),
  json.map((v) => JSON.stringify(['AUTH', v])),
  json.map((v) => JSON.stringify(v)),
  text,
  fc.constantFrom(
    '[',
    '["EVENT"',
    '{"a":',
    '[]',
    '[null]',
    '["REQ"]',
    '["REQ","x",{"limit":-1}]',
    '["REQ","x",{"since":1e400}]',
    'null',
    '""',
  ),
);

t.test('fuzzed relay frames: never a crash, every EVENT answered, OK true only for what is stored', async (t) => {
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const runs = scale(300, 3000);
  const accepted = new Set<string>();
  const refused = new Set<string>();
  const reasons: Record<string, number> = {};
  let frames = 0;
  await fc.assert(
    fc.asyncProperty(frame, async (f) => {
      frames++;
      const before = c.received.length;
      let parsed: unknown;
      try {
        parsed = JSON.parse(f);
      } catch {
        parsed = undefined;
      }
      c.send(f);
      if (Array.isArray(parsed) && parsed[0] === 'EVENT') {
        // an EVENT's admission runs on beside the next messages: its own answer is waited for (an OK, or a NOTICE
        // when the frame holds no event at all)
        const ev = parsed[1] as { id?: unknown } | null;
        const id =
          typeof ev === 'object' && ev !== null && typeof ev.id === 'string' && ev.id.length <= 64 ? ev.id : '';
        const m = await c.next((x) => (x[0] === 'OK' && x[1] === id) || x[0] === 'NOTICE', 10_000);
        if (m[0] === 'OK' && m[2] === true) accepted.add(id);
        if (m[0] === 'OK' && m[2] === false) {
          refused.add(id);
          const prefix = String(m[3]).split(':')[0] ?? '';
          reasons[prefix] = (reasons[prefix] ?? 0) + 1;
        }
        if (
          m[0] === 'OK' &&
          m[2] === false &&
          !/^(invalid|blocked|rate-limited|restricted|auth-required|duplicate|pow|error): /.test(String(m[3]))
        )
          return false;
      } else {
        // other messages are answered in order: a COUNT of nothing sent after it is answered after it
        const marker = `m${frames}`;
        c.send(['COUNT', marker, { ids: ['0'.repeat(64)] }]);
        await c.next((m) => m[1] === marker, 10_000);
      }
      if (
        c.received.slice(before).some((m) => m[0] === 'NOTICE' && !/^(invalid|error|rate-limited): /.test(String(m[1])))
      )
        return false;
      return c.closed === undefined;
    }),
    { numRuns: runs },
  );
  // never half-written: what was accepted is stored, with exactly its indexed tags and one outbox row per relay
  const rows = (await db('nostr_events')
    .whereIn('event_id', [...accepted])
    .select('id', 'event_id', 'tags', 'event_kind')) as {
    id: string;
    event_id: string;
    tags: string[][];
    event_kind: number;
  }[];
  const stored = new Set(rows.map((r) => r.event_id));
  const tagRows = (await db('nostr_event_tags')
    .whereIn(
      'event_row_id',
      rows.map((r) => r.id),
    )
    .select('event_row_id', 'name', 'value')) as { event_row_id: string; name: string; value: Buffer }[];
  const outbox = (await db('relay_publishes')
    .whereIn(
      'event_id',
      rows.map((r) => r.id),
    )
    .select('event_id')) as { event_id: string }[];
  let wrongTags = 0;
  for (const r of rows) {
    const want = indexedTags({ tags: r.tags } as NostrEvent)
      .map((x) => `${x.name}=${storedTagValue(x.value).toString('hex')}`)
      .sort();
    const have = tagRows
      .filter((x) => x.event_row_id === r.id)
      .map((x) => `${x.name}=${x.value.toString('hex')}`)
      .sort();
    if (JSON.stringify(want) !== JSON.stringify(have)) wrongTags++;
  }
  const outboxPer = new Map<string, number>();
  for (const o of outbox) outboxPer.set(o.event_id, (outboxPer.get(o.event_id) ?? 0) + 1);
  const ephemeralAccepted = [...accepted].filter((id) => !stored.has(id)).length;
  figures(t, 'fuzz-frames', {
    frames,
    accepted: accepted.size,
    refused: refused.size,
    reasons,
    stored: rows.length,
    ephemeralAccepted,
    wrongTags,
    outboxRows: outbox.length,
  });
  t.equal(wrongTags, 0, 'every stored event has exactly its indexed tags');
  t.ok(
    [...outboxPer.values()].every((n) => n === 1),
    'and at most one outbox row per relay',
  );
  t.equal(c.closed, undefined, 'the connection is still open');
  t.same(await (await fetch(`${app.url}/healthz`)).json(), { status: 'ok' });
});

const paths = [
  '/',
  '/healthz',
  '/readyz',
  '/metrics',
  '/v1/openapi.json',
  '/v1/events',
  `/v1/events/${'a'.repeat(64)}`,
  '/v1/events/zz',
  '/v1/me',
  '/v1/me/export',
  '/v1/me/quota',
  '/v1/plans',
  '/v1/relays',
  '/v1/relays/1',
  '/v1/relays/x',
  '/v1/sessions',
  '/v1/sessions/current',
  '/v1/sessions/1',
  '/v1/stats',
  '/v1/subscription',
  '/v1/webhooks/payments',
  '/v1/admin/users',
  '/v1/admin/users/1/plan',
  '/v1/admin/users/x/status',
  '/v1/admin/reports/revenue',
  '/v1/events?limit=-1',
  '/v1/events?since=abc',
  '/v1/%ZZ',
  '/v1/../etc/passwd',
  `/v1/${'x'.repeat(3000)}`,
];

t.test('fuzzed HTTP requests: never a 5xx, always a JSON error body for an error', async (t) => {
  const api = new ApiClient(app.url);
  const runs = scale(300, 3000);
  const statuses: Record<number, number> = {};
  const request = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
    path: fc.oneof(
      fc.constantFrom(...paths),
      fc.string({ maxLength: 40 }).map((s) => `/v1/${encodeURIComponent(s)}`),
    ),
    body: fc.oneof(
      fc.constant(undefined),
      json.map((v) => JSON.stringify(v)),
      text,
      signedEvent.map((ev) => JSON.stringify({ event: ev })),
    ),
    contentType: fc.constantFrom(
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=utf-16',
      '',
    ),
    auth: fc.constantFrom('none', 'nip98', 'nip98-wrong-url', 'garbage', 'bearer'),
    key: fc.constantFrom(...keys),
  });
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
      const headers: Record<string, string> = {};
      if (r.auth === 'garbage') headers.authorization = 'Nostr !!!';
      if (r.auth === 'bearer') headers.authorization = 'Bearer 0000';
      if (r.auth === 'nip98' || r.auth === 'nip98-wrong-url') {
        headers.authorization = await api.token(r.key, r.method, r.path, {
          ...(r.auth === 'nip98-wrong-url' ? { signUrl: 'http://elsewhere/' } : {}),
          payloadOf: null,
        });
      }
      const res = await fetch(app.url + r.path, {
        method: r.method,
        headers: { ...headers, ...(hasBody && r.contentType ? { 'content-type': r.contentType } : {}) },
        ...(hasBody ? { body: r.body } : {}),
      });
      const body = await res.text();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status >= 500) return false;
      // an error from /v1 has the catalog's body (an OPTIONS without Origin included)
      if (res.status >= 400 && r.path.startsWith('/v1/') && r.method !== 'HEAD') {
        const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
        return typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string';
      }
      return true;
    }),
    { numRuns: runs },
  );
  figures(t, 'fuzz-http', { requests: runs, statuses });
  t.same(await (await fetch(`${app.url}/healthz`)).json(), { status: 'ok' }, 'the service is still up');
});
