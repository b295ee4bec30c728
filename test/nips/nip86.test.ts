import t from 'tap';
import * as nip86 from '../../src/nips/nip86.js';
import type { Result } from '../../src/nips/result.js';

const messageOf = (r: Result<unknown>): string | undefined => (r.ok ? undefined : r.rejection.message);
const pk = 'a'.repeat(64);

t.test('supportedMethods lists the implemented NIP-86 methods', async (t) => {
  t.same(nip86.supportedMethods, [
    'supportedmethods',
    'banpubkey',
    'unbanpubkey',
    'listbannedpubkeys',
    'allowpubkey',
    'unallowpubkey',
    'listallowedpubkeys',
    'banevent',
    'allowevent',
    'listbannedevents',
  ]);
  t.equal(nip86.contentType, 'application/nostr+json+rpc');
});

t.test('parseRpcRequest reads method and params, treating missing params as empty', async (t) => {
  t.same(nip86.parseRpcRequest({ method: 'banpubkey', params: [pk, 'spam'] }), {
    ok: true,
    value: { method: 'banpubkey', params: [pk, 'spam'] },
  });
  t.same(nip86.parseRpcRequest({ method: 'supportedmethods' }), {
    ok: true,
    value: { method: 'supportedmethods', params: [] },
  });
});

t.test('parseRpcRequest refuses malformed requests and unknown methods', async (t) => {
  const cases: [unknown, string][] = [
    [null, 'invalid: request must be a JSON object'],
    [[], 'invalid: request must be a JSON object'],
    [{}, 'invalid: request must have a "method" string'],
    [{ method: '' }, 'invalid: request must have a "method" string'],
    [{ method: 1 }, 'invalid: request must have a "method" string'],
    [{ method: 'banpubkey', params: {} }, 'invalid: "params" must be an array'],
    [{ method: 'blockip', params: [] }, 'unsupported: method "blockip" is not supported'],
    [{ method: 'BanPubkey', params: [] }, 'unsupported: method "BanPubkey" is not supported'],
  ];
  for (const [raw, message] of cases) t.equal(messageOf(nip86.parseRpcRequest(raw)), message, JSON.stringify(raw));
});

t.test('pubkeyParam requires a 64-character lowercase hex pubkey', async (t) => {
  t.same(nip86.pubkeyParam([pk]), { ok: true, value: pk });
  t.same(nip86.pubkeyParam(['x', pk], 1), { ok: true, value: pk });
  t.equal(messageOf(nip86.pubkeyParam([])), 'invalid: params[0] must be a 64-character lowercase hex pubkey');
  t.equal(messageOf(nip86.pubkeyParam(['npub1abc'])), 'invalid: params[0] must be a 64-character lowercase hex pubkey');
  t.equal(
    messageOf(nip86.pubkeyParam([pk.toUpperCase()])),
    'invalid: params[0] must be a 64-character lowercase hex pubkey',
  );
});

t.test('eventIdParam requires a 64-character lowercase hex event id', async (t) => {
  t.same(nip86.eventIdParam([pk]), { ok: true, value: pk });
  t.equal(messageOf(nip86.eventIdParam([1])), 'invalid: params[0] must be a 64-character lowercase hex event id');
  t.equal(messageOf(nip86.eventIdParam([pk], 1)), 'invalid: params[1] must be a 64-character lowercase hex event id');
});

t.test('reasonParam is optional and must be a bounded string when present', async (t) => {
  t.same(nip86.reasonParam([pk]), { ok: true, value: undefined });
  t.same(nip86.reasonParam([pk, null]), { ok: true, value: undefined });
  t.same(nip86.reasonParam([pk, 'spam']), { ok: true, value: 'spam' });
  t.same(nip86.reasonParam(['spam'], 0), { ok: true, value: 'spam' });
  t.equal(messageOf(nip86.reasonParam([pk, 5])), 'invalid: params[1] (reason) must be a string');
  t.equal(
    messageOf(nip86.reasonParam([pk, 'x'.repeat(1001)])),
    'invalid: params[1] (reason) is 1001 characters, the limit is 1000',
  );
  t.same(nip86.reasonParam([pk, 'x'.repeat(1000)]), { ok: true, value: 'x'.repeat(1000) });
});
