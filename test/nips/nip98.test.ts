import { createHash } from 'node:crypto';
import t from 'tap';
import { getToken } from 'nostr-tools/nip98';
import { finalizeEvent } from 'nostr-tools/pure';
import type { EventTemplate } from 'nostr-tools/pure';
import * as nip01 from '../../src/nips/nip01.js';
import * as nip98 from '../../src/nips/nip98.js';
import type { HttpAuthOptions, HttpAuthResult } from '../../src/nips/nip98.js';
import { buildEvent, newKey } from '../helpers/events.js';

await nip01.initVerifier();

const alice = newKey();
const now = 1_700_000_000;
const url = 'https://api.nostrx.example/v1/things?page=2';
const opts: HttpAuthOptions = { url, method: 'GET', nowSeconds: now, windowSeconds: 60, maxHeaderLength: 4096 };
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function header(parts: { kind?: number; created_at?: number; tags?: string[][]; content?: string } = {}): string {
  const ev = buildEvent(alice.sk, {
    kind: parts.kind ?? 27235,
    created_at: parts.created_at ?? now,
    tags: parts.tags ?? [
      ['u', url],
      ['method', 'GET'],
    ],
    content: parts.content ?? '',
  });
  return 'Nostr ' + Buffer.from(JSON.stringify(ev)).toString('base64');
}
const failure = (r: HttpAuthResult): [string, string] | undefined => (r.ok ? undefined : [r.check, r.message]);

t.test('payloadHash is the sha256 hex of the exact bytes', async (t) => {
  t.equal(nip98.payloadHash(new Uint8Array()), nip98.EMPTY_PAYLOAD_HASH);
  t.equal(nip98.payloadHash(utf8('{"a":1}')), sha(utf8('{"a":1}')));
});

t.test('verifyAuthorization accepts a valid header and returns the pubkey and event id', async (t) => {
  const h = header();
  const r = nip98.verifyAuthorization(h, opts);
  t.equal(r.ok, true);
  if (!r.ok) return;
  t.equal(r.pubkey, alice.pk);
  const ev = JSON.parse(Buffer.from(h.slice(6), 'base64').toString('utf8')) as { id: string };
  t.equal(r.eventId, ev.id);
  t.equal(r.event.id, ev.id);
  t.equal(nip98.verifyAuthorization(h.replace('Nostr ', 'nostr  '), opts).ok, true, 'the scheme is case-insensitive');
  t.equal(
    nip98.verifyAuthorization(
      header({
        tags: [
          ['u', url],
          ['method', 'get'],
        ],
      }),
      opts,
    ).ok,
    true,
    'method compare ignores case',
  );
  t.equal(nip98.verifyAuthorization(h.replace(/=+$/, ''), opts).ok, true, 'unpadded base64');
});

t.test('verifyAuthorization accepts created_at at both edges of the window', async (t) => {
  t.equal(nip98.verifyAuthorization(header({ created_at: now - 60 }), opts).ok, true, '60 s before');
  t.equal(nip98.verifyAuthorization(header({ created_at: now + 60 }), opts).ok, true, '60 s after');
});

t.test('verifyAuthorization names the failed check with a stable code', async (t) => {
  const good = header();
  const forgedSig = (() => {
    const ev = JSON.parse(Buffer.from(good.slice(6), 'base64').toString('utf8')) as Record<string, unknown>;
    ev.sig = buildEvent(alice.sk).sig;
    return 'Nostr ' + Buffer.from(JSON.stringify(ev)).toString('base64');
  })();
  const tampered = (() => {
    const ev = JSON.parse(Buffer.from(good.slice(6), 'base64').toString('utf8')) as Record<string, unknown>;
    ev.content = 'changed';
    return 'Nostr ' + Buffer.from(JSON.stringify(ev)).toString('base64');
  })();
  const cases: [string | undefined, HttpAuthOptions, [string, string]][] = [
    [undefined, opts, ['missing', 'Authorization header is missing']],
    ['  ', opts, ['missing', 'Authorization header is missing']],
    [good.replace('Nostr ', 'Bearer '), opts, ['scheme', 'Authorization header must use the Nostr scheme']],
    [good.slice(6), opts, ['scheme', 'Authorization header must use the Nostr scheme']],
    [
      good,
      { ...opts, maxHeaderLength: good.length - 1 },
      ['too-long', `Authorization header is ${good.length} characters, the limit is ${good.length - 1}`],
    ],
    ['Nostr ', opts, ['base64', 'Authorization header has no token']],
    ['Nostr  x', opts, ['base64', 'Authorization token is not valid base64']],
    ['Nostr e30=.', opts, ['base64', 'Authorization token is not valid base64']],
    ['Nostr ' + Buffer.from('{not json').toString('base64'), opts, ['json', 'Authorization token is not UTF-8 JSON']],
    [
      'Nostr ' + Buffer.from([0x7b, 0xff, 0x7d]).toString('base64'),
      opts,
      ['json', 'Authorization token is not UTF-8 JSON'],
    ],
    [
      'Nostr ' + Buffer.from('{"kind":27235}').toString('base64'),
      opts,
      ['shape', 'Authorization event is malformed: invalid: event is missing "id"'],
    ],
    [header({ kind: 1 }), opts, ['kind', 'Authorization event must be kind 27235, got 1']],
    [
      header({ created_at: now + 61 }),
      opts,
      ['created_at', 'Authorization event created_at is 61 s in the future, the limit is 60 s'],
    ],
    [
      header({ created_at: now - 61 }),
      opts,
      ['created_at', 'Authorization event created_at is 61 s in the past, the limit is 60 s'],
    ],
    [header({ tags: [['method', 'GET']] }), opts, ['url', 'Authorization event has no u tag']],
    [
      header({
        tags: [
          ['u', 'https://api.nostrx.example/v1/things'],
          ['method', 'GET'],
        ],
      }),
      opts,
      ['url', 'Authorization event u tag does not match the request URL'],
    ],
    [
      header({
        tags: [
          ['u', url + '&x=1'],
          ['method', 'GET'],
        ],
      }),
      opts,
      ['url', 'Authorization event u tag does not match the request URL'],
    ],
    [
      header({
        tags: [
          ['u', 'http://api.nostrx.example/v1/things?page=2'],
          ['method', 'GET'],
        ],
      }),
      opts,
      ['url', 'Authorization event u tag does not match the request URL'],
    ],
    [header({ tags: [['u', url]] }), opts, ['method', 'Authorization event has no method tag']],
    [
      header({
        tags: [
          ['u', url],
          ['method', 'POST'],
        ],
      }),
      opts,
      ['method', 'Authorization event method tag does not match the request method GET'],
    ],
    [tampered, opts, ['signature', 'Authorization event id does not match the event hash']],
    [forgedSig, opts, ['signature', 'Authorization event signature is invalid']],
  ];
  for (const [h, o, expected] of cases) t.same(failure(nip98.verifyAuthorization(h, o)), expected, expected[1]);
});

t.test('verifyAuthorization requires a payload tag matching the exact body bytes', async (t) => {
  const body = utf8('{"name":"x"}');
  const post = { ...opts, method: 'POST', body };
  const tags = (extra: string[][]): string[][] => [['u', url], ['method', 'POST'], ...extra];
  t.equal(nip98.verifyAuthorization(header({ tags: tags([['payload', sha(body)]]) }), post).ok, true);
  t.equal(
    nip98.verifyAuthorization(header({ tags: tags([['payload', sha(body).toUpperCase()]]) }), post).ok,
    true,
    'hex case is ignored',
  );
  t.same(failure(nip98.verifyAuthorization(header({ tags: tags([]) }), post)), [
    'payload',
    'Authorization event has no payload tag, required for a request body',
  ]);
  t.same(failure(nip98.verifyAuthorization(header({ tags: tags([['payload', sha(utf8('{"name": "x"}'))]]) }), post)), [
    'payload',
    'Authorization event payload tag does not match the request body',
  ]);
});

t.test('verifyAuthorization allows only the empty-body hash as a payload tag without a body', async (t) => {
  const post = { ...opts, method: 'POST' };
  const tags = (extra: string[][]): string[][] => [['u', url], ['method', 'POST'], ...extra];
  t.equal(nip98.verifyAuthorization(header({ tags: tags([]) }), post).ok, true, 'no body, no tag');
  t.equal(
    nip98.verifyAuthorization(header({ tags: tags([['payload', nip98.EMPTY_PAYLOAD_HASH]]) }), post).ok,
    true,
    'no body, empty hash',
  );
  t.equal(
    nip98.verifyAuthorization(header({ tags: tags([['payload', nip98.EMPTY_PAYLOAD_HASH]]) }), {
      ...post,
      body: new Uint8Array(),
    }).ok,
    true,
    'empty body, empty hash',
  );
  t.same(failure(nip98.verifyAuthorization(header({ tags: tags([['payload', sha(utf8('x'))]]) }), post)), [
    'payload',
    'Authorization event payload tag does not match the empty request body',
  ]);
});

t.test(
  'verifyAuthorization accepts tokens from nostr-tools getToken with an object body sent as JSON.stringify',
  async (t) => {
    const realNow = Math.floor(Date.now() / 1000);
    const sign = async (e: EventTemplate) => finalizeEvent(e, alice.sk);
    const bodyObject = { name: 'x', tiers: [1, 2], note: 'é 🎉' };
    const token = await getToken(url, 'post', sign, true, bodyObject);
    const body = utf8(JSON.stringify(bodyObject)); // what fetch sends for body: JSON.stringify(obj)
    const r = nip98.verifyAuthorization(token, { ...opts, method: 'POST', body, nowSeconds: realNow });
    t.equal(r.ok, true);
    const noBody = await getToken(url, 'GET', sign, true);
    t.equal(nip98.verifyAuthorization(noBody, { ...opts, nowSeconds: realNow }).ok, true, 'a token without a payload');
    // getToken hashes JSON.stringify(payload): a string body is hashed with its quotes, so it cannot match the raw bytes
    const stringToken = await getToken(url, 'POST', sign, true, 'raw text' as unknown as Record<string, unknown>);
    t.same(
      failure(
        nip98.verifyAuthorization(stringToken, {
          ...opts,
          method: 'POST',
          body: utf8('raw text'),
          nowSeconds: realNow,
        }),
      ),
      ['payload', 'Authorization event payload tag does not match the request body'],
    );
  },
);
