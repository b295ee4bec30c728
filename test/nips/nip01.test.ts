import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import t from 'tap';
import { finalizeEvent, getEventHash, verifyEvent as nostrToolsVerify } from 'nostr-tools/pure';
import type { NostrEvent } from 'nostr-tools/pure';
import * as nip01 from '../../src/nips/nip01.js';
import type { EventLimits } from '../../src/nips/nip01.js';
import type { Result } from '../../src/nips/result.js';
import { buildEvent, newKey } from '../helpers/events.js';

interface Vector {
  name: string;
  event: NostrEvent;
  serialized: string;
}
const { vectors } = JSON.parse(readFileSync(new URL('./nip01-vectors.json', import.meta.url), 'utf8')) as {
  vectors: Vector[];
};

const alice = newKey();
const now = 1_700_000_000;

/** The rejection text of a failed result; undefined for a success. */
function messageOf(r: Result<unknown>): string | undefined {
  return r.ok ? undefined : r.rejection.message;
}

// Must run before initVerifier: the verifier refuses to work unloaded instead of accepting.
t.test('verifySignature throws when initVerifier has not run', async (t) => {
  t.throws(() => nip01.verifySignature(buildEvent(alice.sk)), /before nip01\.initVerifier/);
});

t.test('initVerifier reports a loader failure as a clear Error and can be retried', async (t) => {
  await t.rejects(
    nip01.initVerifier({
      loadWasm: async () => {
        throw new Error('no wasm here');
      },
    }),
    { message: 'nip01.initVerifier: could not load nostr-wasm (no wasm here)' },
  );
  await t.rejects(
    nip01.initVerifier({
      loadWasm: () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- a loader that throws a non-Error value
        throw 'sync failure';
      },
    }),
    { message: 'nip01.initVerifier: could not load nostr-wasm (sync failure)' },
  );
  t.throws(() => nip01.verifySignature(buildEvent(alice.sk)), /before nip01\.initVerifier/, 'still unloaded');
  const [first, second] = await Promise.all([nip01.initVerifier(), nip01.initVerifier()]);
  t.equal(second, first);
  t.equal(await nip01.initVerifier({ backend: 'wasm' }), first, 'idempotent: the first load decides');
  t.equal(first.backend, 'native', 'bcrypto built at install and passed its self-check');
  t.equal(nip01.verifySignature(buildEvent(alice.sk)).ok, true);
});

t.test('parseEvent accepts a well-formed event and returns a fresh copy', async (t) => {
  const ev = finalizeEvent({ kind: 1, created_at: now, tags: [['t', 'x']], content: 'hi' }, alice.sk);
  const r = nip01.parseEvent(ev);
  t.equal(r.ok, true);
  if (!r.ok) return;
  t.not(r.value, ev, 'not the input object');
  t.not(r.value.tags, ev.tags, 'tags are copied');
  t.not(r.value.tags[0], ev.tags[0], 'each tag is copied');
  t.same(r.value, {
    id: ev.id,
    pubkey: ev.pubkey,
    created_at: now,
    kind: 1,
    tags: [['t', 'x']],
    content: 'hi',
    sig: ev.sig,
  });
  t.same(Object.getOwnPropertySymbols(r.value), [], "nostr-tools' verified mark is not copied");
  t.same(Object.keys(r.value), ['id', 'pubkey', 'created_at', 'kind', 'tags', 'content', 'sig']);
});

t.test('parseEvent rejects every shape error with a specific message', async (t) => {
  const good = buildEvent(alice.sk, { created_at: now });
  const cases: [unknown, string][] = [
    [null, 'invalid: event must be a JSON object'],
    ['event', 'invalid: event must be a JSON object'],
    [[good], 'invalid: event must be a JSON object'],
    [{ ...good, extra: 1 }, 'invalid: unexpected event field "extra"'],
    [{ ...good, sig: undefined, extra: undefined }, 'invalid: unexpected event field "extra"'],
    [(({ sig: _s, ...rest }) => rest)(good), 'invalid: event is missing "sig"'],
    [(({ tags: _g, ...rest }) => rest)(good), 'invalid: event is missing "tags"'],
    [{ ...good, id: good.id.toUpperCase() }, 'invalid: id must be 64 lowercase hex characters'],
    [{ ...good, id: good.id.slice(1) }, 'invalid: id must be 64 lowercase hex characters'],
    [{ ...good, id: 5 }, 'invalid: id must be 64 lowercase hex characters'],
    [{ ...good, pubkey: 'z'.repeat(64) }, 'invalid: pubkey must be 64 lowercase hex characters'],
    [{ ...good, sig: good.sig.slice(2) }, 'invalid: sig must be 128 lowercase hex characters'],
    [{ ...good, sig: good.sig.toUpperCase() }, 'invalid: sig must be 128 lowercase hex characters'],
    [{ ...good, kind: 1.5 }, 'invalid: kind must be an integer from 0 to 65535'],
    [{ ...good, kind: -1 }, 'invalid: kind must be an integer from 0 to 65535'],
    [{ ...good, kind: 65536 }, 'invalid: kind must be an integer from 0 to 65535'],
    [{ ...good, kind: '1' }, 'invalid: kind must be an integer from 0 to 65535'],
    [{ ...good, created_at: -1 }, 'invalid: created_at must be a non-negative integer'],
    [{ ...good, created_at: 1.5 }, 'invalid: created_at must be a non-negative integer'],
    [{ ...good, created_at: '1700000000' }, 'invalid: created_at must be a non-negative integer'],
    [{ ...good, created_at: 2 ** 53 }, 'invalid: created_at must be a non-negative integer'],
    [{ ...good, content: 1 }, 'invalid: content must be a string'],
    [{ ...good, tags: {} }, 'invalid: tags must be an array'],
    [{ ...good, tags: [['t', 'x'], []] }, 'invalid: tag 1 must be a non-empty array'],
    [{ ...good, tags: ['t'] }, 'invalid: tag 0 must be a non-empty array'],
    [{ ...good, tags: [['t', 1]] }, 'invalid: tag 0 must contain only strings'],
    [{ ...good, tags: [['t', null]] }, 'invalid: tag 0 must contain only strings'],
  ];
  for (const [raw, message] of cases) t.equal(messageOf(nip01.parseEvent(raw)), message);
  t.equal(
    nip01.parseEvent({ ...good, created_at: 0, kind: 65535, content: '' }).ok,
    true,
    'boundary values are accepted',
  );
});

const limits: EventLimits = {
  maxContentLength: 100,
  maxEventTags: 3,
  maxTagElementLength: 10,
  createdAtPastSeconds: 86400,
  createdAtFutureSeconds: 900,
};

t.test('checkLimits accepts values exactly at each limit', async (t) => {
  const ev = buildEvent(alice.sk, {
    created_at: now + 900,
    content: 'x'.repeat(100),
    tags: [['t', 'x'.repeat(10)], ['a'], ['b']],
  });
  t.equal(nip01.checkLimits(ev, limits, now), undefined, '900 s ahead');
  t.equal(nip01.checkLimits({ ...ev, created_at: now - 86400 }, limits, now), undefined, '86400 s behind');
  t.equal(nip01.checkLimits({ ...ev, created_at: now }, limits, now), undefined, 'now');
});

t.test('checkLimits names the broken limit and its numbers', async (t) => {
  const ev = buildEvent(alice.sk, { created_at: now });
  const cases: [NostrEvent, string][] = [
    [{ ...ev, content: 'x'.repeat(101) }, 'invalid: content is 101 characters, the limit is 100'],
    [{ ...ev, tags: [['a'], ['b'], ['c'], ['d']] }, 'invalid: event has 4 tags, the limit is 3'],
    [{ ...ev, tags: [['p', 'x'.repeat(11)]] }, 'invalid: a "p" tag has an element of 11 characters, the limit is 10'],
    [
      { ...ev, tags: [['y'.repeat(11)]] },
      `invalid: a "${'y'.repeat(11)}" tag has an element of 11 characters, the limit is 10`,
    ],
    [{ ...ev, created_at: now + 901 }, 'invalid: created_at is 901 s in the future, the limit is 900 s'],
    [{ ...ev, created_at: now + 3600 }, 'invalid: created_at is 3600 s in the future, the limit is 900 s'],
    [{ ...ev, created_at: now - 86401 }, 'invalid: created_at is 86401 s in the past, the limit is 86400 s'],
  ];
  for (const [e, message] of cases) t.equal(nip01.checkLimits(e, limits, now)?.message, message);
  t.equal(
    nip01.checkLimits({ ...ev, created_at: 0 }, { ...limits, createdAtPastSeconds: Infinity }, now),
    undefined,
    'Infinity disables the past limit',
  );
  t.equal(
    nip01.checkLimits(
      { ...ev, tags: Array.from({ length: 2100 }, () => ['t']) },
      { ...limits, maxEventTags: 2000 },
      now,
    )?.message,
    'invalid: event has 2100 tags, the limit is 2000',
  );
});

t.test('checkId accepts the NIP-01 vectors, whose serialisation was written independently', async (t) => {
  for (const v of vectors) {
    t.equal(
      createHash('sha256').update(v.serialized, 'utf8').digest('hex'),
      v.event.id,
      `${v.name}: sha256 of the serialisation`,
    );
    t.equal(getEventHash(v.event), v.event.id, `${v.name}: getEventHash agrees`);
    t.equal(nip01.checkId(v.event), undefined, `${v.name}: checkId accepts`);
  }
  const escapes = vectors[0]!;
  t.ok(escapes.serialized.endsWith(String.raw`"line one\nline \"two\" back\\slash"]`), 'escapes as NIP-01 lists them');
  const unicode = vectors[1]!;
  t.ok(unicode.serialized.includes('日本語 Ünïcödé 🎉🤙'), 'non-ASCII is written verbatim');
  const controls = vectors[2]!;
  t.ok(
    controls.serialized.includes(String.raw`tab\tcr\rbs\bff\fsoh\u0001us\u001f slash/ ls` + '\u2028'),
    'other controls use \\u00XX',
  );
});

t.test('checkId hashes lone surrogates as getEventHash does (each as U+FFFD)', async (t) => {
  const ev = finalizeEvent({ kind: 1, created_at: now, tags: [['t', '\uD83D']], content: 'a\uD800b \uDFFF' }, alice.sk);
  t.equal(getEventHash(ev), ev.id);
  t.equal(nip01.checkId(ev), undefined);
});

t.test('checkId rejects an event whose id does not match its hash', async (t) => {
  const ev = vectors[1]!.event;
  t.equal(nip01.checkId({ ...ev, content: ev.content + ' ' })?.message, 'invalid: id does not match the event hash');
  t.equal(
    nip01.checkId({ ...ev, content: ev.content.normalize('NFD') })?.message,
    'invalid: id does not match the event hash',
    'unicode is not normalised',
  );
  t.equal(nip01.checkId({ ...ev, tags: [] })?.message, 'invalid: id does not match the event hash');
  t.equal(nip01.checkId({ ...ev, pubkey: 'nothex' })?.message, 'invalid: event is malformed');
});

t.test('verifySignature accepts the signed vectors and returns a fresh branded copy', async (t) => {
  for (const v of vectors) {
    const r = nip01.verifySignature(v.event);
    t.equal(r.ok, true, v.name);
    if (r.ok) {
      t.not(r.value, v.event);
      t.same(r.value, v.event);
      t.same(Object.getOwnPropertySymbols(r.value), [], 'no cached mark is left on the result');
    }
  }
  t.same(Object.getOwnPropertySymbols(vectors[0]!.event), [], 'no mark is left on the input');
});

t.test('verifySignature rejects a wrong id, a wrong signature and an invalid pubkey', async (t) => {
  const ev = buildEvent(alice.sk, { created_at: now });
  const other = buildEvent(alice.sk, { created_at: now, content: 'other' });
  t.equal(messageOf(nip01.verifySignature({ ...ev, content: 'changed' })), 'invalid: id does not match the event hash');
  t.equal(messageOf(nip01.verifySignature({ ...ev, sig: other.sig })), 'invalid: signature is invalid');
  t.equal(messageOf(nip01.verifySignature({ ...ev, sig: '0'.repeat(128) })), 'invalid: signature is invalid');
  const notOnCurve = { ...ev, pubkey: 'f'.repeat(64) };
  notOnCurve.id = getEventHash(notOnCurve);
  t.equal(messageOf(nip01.verifySignature(notOnCurve)), 'invalid: pubkey is not a valid secp256k1 x-only public key');
  const bob = newKey();
  const stolen = { ...ev, pubkey: bob.pk };
  stolen.id = getEventHash(stolen);
  t.equal(messageOf(nip01.verifySignature(stolen)), 'invalid: signature is invalid');
  t.equal(messageOf(nip01.verifySignature({ ...ev, pubkey: 'nothex' })), 'invalid: event is malformed');
});

/** BIP-340 edge cases: each backend must give each of them the same verdict. */
function edgeCases(): { name: string; ev: NostrEvent }[] {
  const ev = buildEvent(alice.sk, { created_at: now });
  const other = buildEvent(alice.sk, { created_at: now, content: 'other' });
  const rehash = (e: NostrEvent): NostrEvent => ({ ...e, id: getEventHash(e) });
  const p = 'fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f';
  const n = 'fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141';
  const big = buildEvent(alice.sk, { created_at: now, content: 'x'.repeat(1_200_000) });
  return [
    { name: 'valid', ev },
    {
      name: 'valid, with tags and unicode',
      ev: buildEvent(alice.sk, {
        created_at: now,
        content: 'é 🐦 "quoted"\n',
        tags: [
          ['t', 'x'],
          ['p', alice.pk, 'wss://r'],
        ],
      }),
    },
    { name: 'valid, 1.2 MB', ev: big },
    { name: '1.2 MB, wrong signature', ev: { ...big, sig: other.sig } },
    { name: 'content changed', ev: { ...ev, content: 'changed' } },
    { name: 'signature of another event', ev: { ...ev, sig: other.sig } },
    { name: 'signature of zeros', ev: { ...ev, sig: '0'.repeat(128) } },
    { name: 'r = p', ev: { ...ev, sig: p + ev.sig.slice(64) } },
    { name: 's = n', ev: { ...ev, sig: ev.sig.slice(0, 64) + n } },
    { name: 's = all ones', ev: { ...ev, sig: ev.sig.slice(0, 64) + 'f'.repeat(64) } },
    { name: 'pubkey beyond the field prime', ev: rehash({ ...ev, pubkey: 'f'.repeat(64) }) },
    { name: 'pubkey x = 5, no point on the curve', ev: rehash({ ...ev, pubkey: '0'.repeat(63) + '5' }) },
    { name: 'pubkey x = 1, on the curve, not the signer', ev: rehash({ ...ev, pubkey: '0'.repeat(63) + '1' }) },
    { name: 'pubkey of zeros', ev: rehash({ ...ev, pubkey: '0'.repeat(64) }) },
    { name: 'another valid signer', ev: buildEvent(newKey().sk, { created_at: now }) },
    { name: 'uppercase signature (NIP-01 hex is lowercase)', ev: { ...ev, sig: ev.sig.toUpperCase() } },
    { name: 'signature with a non-hex digit', ev: { ...ev, sig: ev.sig.slice(0, 127) + 'g' } },
    { name: 'short signature', ev: { ...ev, sig: ev.sig.slice(0, 126) } },
  ];
}

t.test('the native backend and nostr-wasm give every BIP-340 edge case the same verdict', async (t) => {
  for (const { name, ev } of edgeCases()) {
    const native = nip01.verifySignature(ev, 'native');
    const wasm = nip01.verifySignature(ev, 'wasm');
    t.same(native, wasm, name);
  }
  t.equal(nip01.verifySignature(edgeCases()[0]!.ev, 'native').ok, true, 'the corpus has valid events');
  t.equal(
    messageOf(nip01.verifySignature(edgeCases()[11]!.ev, 'native')),
    'invalid: pubkey is not a valid secp256k1 x-only public key',
  );
});

t.test('the native backend agrees with nostr-wasm on 300 random keys and their forgeries', async (t) => {
  let same = 0;
  for (let i = 0; i < 300; i++) {
    const ev = buildEvent(newKey().sk, { created_at: now + i, content: `event ${i}` });
    const flipped = {
      ...ev,
      sig: ev.sig.slice(0, i % 128) + (ev.sig[i % 128] === '0' ? '1' : '0') + ev.sig.slice((i % 128) + 1),
    };
    for (const e of [ev, flipped])
      if (JSON.stringify(nip01.verifySignature(e, 'native')) === JSON.stringify(nip01.verifySignature(e, 'wasm')))
        same++;
  }
  t.equal(same, 600);
});

t.test("verifySignature ignores nostr-tools' cached verified mark", async (t) => {
  const ev = finalizeEvent({ kind: 1, created_at: now, tags: [], content: 'signed' }, alice.sk);
  const forged = { ...ev, sig: buildEvent(alice.sk, { content: 'else' }).sig }; // spread copies the mark
  t.equal(nostrToolsVerify(forged), true, 'nostr-tools trusts the copied mark');
  t.equal(messageOf(nip01.verifySignature(forged)), 'invalid: signature is invalid');
});

t.test('verifySignature handles events too large for the wasm heap', async (t) => {
  const big = buildEvent(alice.sk, { created_at: now, content: 'x'.repeat(1_200_000) });
  t.equal(nip01.verifySignature(big).ok, true, 'a 1.2 MB event verifies');
  const other = buildEvent(alice.sk, { created_at: now });
  t.equal(messageOf(nip01.verifySignature({ ...big, sig: other.sig })), 'invalid: signature is invalid');
  const mid = buildEvent(alice.sk, { created_at: now, content: 'é'.repeat(119_000) });
  t.equal(nip01.verifySignature(mid).ok, true, 'just under the wasm size bound');
});

t.test('firstTagValue returns the value of the first tag with that name', async (t) => {
  const ev = { tags: [['p', 'a'], ['e', 'first'], ['e', 'second'], ['x']] };
  t.equal(nip01.firstTagValue(ev, 'e'), 'first');
  t.equal(nip01.firstTagValue(ev, 'x'), undefined, 'a tag without a value');
  t.equal(nip01.firstTagValue(ev, 'q'), undefined, 'no such tag');
});

t.test('isHex64 accepts only 64 lowercase hex characters', async (t) => {
  t.equal(nip01.isHex64('a'.repeat(64)), true);
  t.equal(nip01.isHex64('A'.repeat(64)), false);
  t.equal(nip01.isHex64('a'.repeat(63)), false);
  t.equal(nip01.isHex64(1), false);
});
