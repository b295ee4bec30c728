/**
 * NIP-01 events: shape, limits, id and signature. Pure functions over plain data; the only
 * state is the signature backend loaded once by `initVerifier()`: nostr-wasm always, and the
 * native one (bip340-native.ts) unless told otherwise.
 */
import { createHash } from 'node:crypto';
import { serializeEvent, verifyEvent as verifyEventPure } from 'nostr-tools/pure';
import type { NostrEvent } from 'nostr-tools/pure';
import { setNostrWasm } from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';
import type { Nostr } from 'nostr-wasm';
import { loadNativeBip340, type NativeBip340 } from './bip340-native.js';
import { fail, ok, rejection } from './result.js';
import type { Rejection, Result } from './result.js';

export type { NostrEvent };

declare const verified: unique symbol;
/**
 * An event whose id and signature were checked by `verifySignature`. The brand exists only in
 * the type system; only `verifySignature` produces it. Do not spread a VerifiedEvent into a
 * modified copy: the compiler cannot see that the copy is no longer verified.
 */
export type VerifiedEvent = NostrEvent & { readonly [verified]: true };

export interface EventLimits {
  /** Maximum `content.length` (UTF-16 code units, as NIP-11 `max_content_length`). */
  maxContentLength: number;
  maxEventTags: number;
  /** Maximum length of any single tag element (name or value). */
  maxTagElementLength: number;
  /** How far `created_at` may lie before now; `Infinity` disables the check. */
  createdAtPastSeconds: number;
  /** How far `created_at` may lie after now. */
  createdAtFutureSeconds: number;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const FIELDS = ['id', 'pubkey', 'created_at', 'kind', 'tags', 'content', 'sig'] as const;

export function isHex64(s: unknown): s is string {
  return typeof s === 'string' && HEX64.test(s);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Checks the shape only (no hashing): exactly the seven NIP-01 fields with the right types.
 * Returns a fresh plain object (tags copied too), never the input, so nothing attached to the
 * input (such as nostr-tools' cached "verified" symbol) survives.
 */
export function parseEvent(raw: unknown): Result<NostrEvent> {
  if (!isRecord(raw)) return fail('invalid', 'event must be a JSON object');
  for (const key of Object.keys(raw)) {
    if (!(FIELDS as readonly string[]).includes(key)) return fail('invalid', `unexpected event field "${key}"`);
  }
  for (const key of FIELDS) {
    if (!Object.hasOwn(raw, key)) return fail('invalid', `event is missing "${key}"`);
  }
  const { id, pubkey, created_at, kind, tags, content, sig } = raw;
  if (!isHex64(id)) return fail('invalid', 'id must be 64 lowercase hex characters');
  if (!isHex64(pubkey)) return fail('invalid', 'pubkey must be 64 lowercase hex characters');
  if (typeof sig !== 'string' || !HEX128.test(sig)) return fail('invalid', 'sig must be 128 lowercase hex characters');
  if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 0 || kind > 65535) {
    return fail('invalid', 'kind must be an integer from 0 to 65535');
  }
  if (typeof created_at !== 'number' || !Number.isSafeInteger(created_at) || created_at < 0) {
    return fail('invalid', 'created_at must be a non-negative integer');
  }
  if (typeof content !== 'string') return fail('invalid', 'content must be a string');
  if (!Array.isArray(tags)) return fail('invalid', 'tags must be an array');
  const copied: string[][] = [];
  for (let i = 0; i < tags.length; i++) {
    const tag: unknown = tags[i];
    if (!Array.isArray(tag) || tag.length === 0) return fail('invalid', `tag ${i} must be a non-empty array`);
    for (const el of tag) {
      if (typeof el !== 'string') return fail('invalid', `tag ${i} must contain only strings`);
    }
    copied.push((tag as string[]).slice());
  }
  return ok({ id, pubkey, created_at, kind, tags: copied, content, sig });
}

/** Size and time limits. The first broken limit is returned; undefined when all hold. */
/**
 * How `created_at` falls outside the window [now - past, now + future], in words
 * ("3600 s in the future, the limit is 900 s"), or undefined when it is inside. Both sides are checked.
 */
export function createdAtOutside(
  createdAt: number,
  nowSeconds: number,
  past: number,
  future: number,
): string | undefined {
  const ahead = createdAt - nowSeconds;
  if (ahead > future) return `${ahead} s in the future, the limit is ${future} s`;
  if (-ahead > past) return `${-ahead} s in the past, the limit is ${past} s`;
  return undefined;
}

/** Longest d tag, in UTF-8 bytes: it is part of a unique btree key (PostgreSQL caps an entry near 2.7 kB). */
const MAX_D_TAG_BYTES = 512;

function hasNul(ev: NostrEvent): boolean {
  if (ev.content.includes('\u0000')) return true;
  return ev.tags.some((tag) => tag.some((el) => el.includes('\u0000')));
}

/** A UTF-16 surrogate without its pair: not a Unicode character, so it has no UTF-8 form. */
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function hasLoneSurrogate(ev: NostrEvent): boolean {
  if (loneSurrogate.test(ev.content)) return true;
  return ev.tags.some((tag) => tag.some((el) => loneSurrogate.test(el)));
}

export function checkLimits(ev: NostrEvent, limits: EventLimits, nowSeconds: number): Rejection | undefined {
  // PostgreSQL text and jsonb cannot hold U+0000; such an event could never be stored or served as signed.
  if (hasNul(ev)) return rejection('invalid', 'event contains a NUL (U+0000) character');
  // Nor text that is not Unicode: stored, it would come back changed (U+FFFD) or be refused by jsonb.
  if (hasLoneSurrogate(ev))
    return rejection('invalid', 'event contains an unpaired UTF-16 surrogate (not a Unicode character)');
  const d = ev.tags.find((t) => t[0] === 'd')?.[1];
  if (d !== undefined && Buffer.byteLength(d) > MAX_D_TAG_BYTES) {
    return rejection('invalid', `d tag is ${Buffer.byteLength(d)} bytes, the limit is ${MAX_D_TAG_BYTES}`);
  }
  if (ev.content.length > limits.maxContentLength) {
    return rejection('invalid', `content is ${ev.content.length} characters, the limit is ${limits.maxContentLength}`);
  }
  if (ev.tags.length > limits.maxEventTags) {
    return rejection('invalid', `event has ${ev.tags.length} tags, the limit is ${limits.maxEventTags}`);
  }
  for (const tag of ev.tags) {
    for (const el of tag) {
      if (el.length > limits.maxTagElementLength) {
        return rejection(
          'invalid',
          `a "${(tag[0] ?? '').slice(0, 32)}" tag has an element of ${el.length} characters, the limit is ${limits.maxTagElementLength}`,
        );
      }
    }
  }
  const outside = createdAtOutside(
    ev.created_at,
    nowSeconds,
    limits.createdAtPastSeconds,
    limits.createdAtFutureSeconds,
  );
  if (outside) return rejection('invalid', `created_at is ${outside}`);
  return undefined;
}

/**
 * nostr-tools' serialisation (it refuses a malformed event) hashed by Node's own SHA-256: half the time of
 * getEventHash's JavaScript SHA-256 for a 500-byte event (~5 µs of every check, on the verifier threads).
 */
function computeId(ev: NostrEvent): string | undefined {
  try {
    return createHash('sha256').update(serializeEvent(ev)).digest('hex');
  } catch {
    return undefined; // nostr-tools refuses to serialise a malformed event
  }
}

/** The cheap check: the id is the sha256 of the NIP-01 serialisation. No signature check. */
export function checkId(ev: NostrEvent): Rejection | undefined {
  const id = computeId(ev);
  if (id === undefined) return rejection('invalid', 'event is malformed');
  if (id !== ev.id) return rejection('invalid', 'id does not match the event hash');
  return undefined;
}

/** Who checks signatures: bcrypto's native libsecp256k1 binding, or nostr-wasm. */
export type VerifierBackend = 'native' | 'wasm';
/** VERIFY_BACKEND: `auto` takes the native backend when it loads and passes its self-check, else nostr-wasm. */
type VerifierChoice = 'auto' | VerifierBackend;

export interface VerifierOptions {
  readonly backend?: VerifierChoice;
  /** Loads nostr-wasm; exists for tests. */
  readonly loadWasm?: () => Promise<Nostr>;
}

export interface VerifierLoaded {
  readonly backend: VerifierBackend;
  /** Why `auto` did not take the native backend. */
  readonly nativeUnavailable?: string;
}

let wasm: Nostr | undefined;
let native: NativeBip340 | undefined;
let loaded: VerifierLoaded | undefined;
let loading: Promise<VerifierLoaded> | undefined;

/**
 * Loads the signature backends once (concurrent and later calls share the first load, and its
 * choice). nostr-wasm is always loaded: it is the fallback, and installing it into
 * `nostr-tools/wasm` makes `finalizeEvent` from there work elsewhere. Throws an Error naming the
 * cause when nostr-wasm cannot be loaded, or when `native` was asked for and is unavailable; a
 * failed load may be retried.
 */
export async function initVerifier(opts: VerifierOptions = {}): Promise<VerifierLoaded> {
  if (loaded) return loaded;
  loading ??= loadVerifier(opts.backend ?? 'auto', opts.loadWasm ?? initNostrWasm);
  try {
    return await loading;
  } catch (err) {
    loading = undefined;
    throw err;
  }
}

async function loadVerifier(choice: VerifierChoice, load: () => Promise<Nostr>): Promise<VerifierLoaded> {
  let instance: Nostr;
  try {
    instance = await load();
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`nip01.initVerifier: could not load nostr-wasm (${why})`, { cause });
  }
  const nat = choice === 'wasm' ? undefined : loadNativeBip340();
  if (choice === 'native' && !nat?.ok)
    throw new Error(`nip01.initVerifier: VERIFY_BACKEND=native, but ${nat && !nat.ok ? nat.why : 'it did not load'}`);
  setNostrWasm(instance);
  wasm = instance;
  if (nat?.ok) native = nat.verifier;
  loaded = native
    ? { backend: 'native' }
    : { backend: 'wasm', ...(nat && !nat.ok ? { nativeUnavailable: nat.why } : {}) };
  return loaded;
}

/**
 * nostr-wasm's heap cannot grow: hashing a serialisation of about 945 kB aborts with
 * "Out of memory". Events whose serialisation could come near that (JSON escapes at most
 * 6 bytes per UTF-16 unit) are verified with the pure-JS implementation instead.
 */
const WASM_MAX_CHARS = 120_000;

function serialisedCharsUpperBound(ev: NostrEvent): number {
  let n = ev.content.length + 200;
  for (const tag of ev.tags) {
    n += 4;
    for (const el of tag) n += el.length + 3;
  }
  return n;
}

/** A copy of the seven NIP-01 fields (tags copied too), with nothing else a caller may have attached. */
export function copyEvent(ev: NostrEvent): NostrEvent {
  return {
    id: ev.id,
    pubkey: ev.pubkey,
    created_at: ev.created_at,
    kind: ev.kind,
    tags: ev.tags.map((t) => t.slice()),
    content: ev.content,
    sig: ev.sig,
  };
}

/**
 * Computes the id (computeId) and checks the BIP-340 signature, freshly every time: it works
 * on a copy, so no cached "verified" mark (nostr-tools sets one on objects it has seen) can be
 * read or left behind. Returns that copy, branded. `backend` (tests) picks one of the loaded
 * backends; by default the one initVerifier() chose. Throws if `initVerifier()` has not run.
 */
export function verifySignature(
  ev: NostrEvent,
  backend: VerifierBackend | undefined = loaded?.backend,
): Result<VerifiedEvent> {
  if (!wasm || !backend) throw new Error('nip01.verifySignature called before nip01.initVerifier()');
  const copy = copyEvent(ev);
  const id = computeId(copy);
  if (id === undefined) return fail('invalid', 'event is malformed');
  if (id !== copy.id) return fail('invalid', 'id does not match the event hash');
  // NIP-01 signatures are lowercase hex; nostr-wasm would take an uppercase one, bcrypto's decoding a shorter one
  if (!HEX128.test(copy.sig)) return fail('invalid', 'signature is invalid');
  if (backend === 'native') return verifyNative(copy);
  if (serialisedCharsUpperBound(copy) > WASM_MAX_CHARS) {
    // a second fresh copy: the pure verifier caches its answer on the object it is given
    return verifyEventPure(copyEvent(copy)) ? ok(copy as VerifiedEvent) : fail('invalid', 'signature is invalid');
  }
  try {
    wasm.verifyEvent(copy);
  } catch (err) {
    const why = err instanceof Error ? err.message : '';
    if (why === 'pubkey is invalid') return fail('invalid', BAD_PUBKEY);
    if (why === 'signature is invalid' || why === 'id is invalid') return fail('invalid', 'signature is invalid');
    // anything else is a wasm runtime fault, not a verdict: ask the pure implementation
    return verifyEventPure(copyEvent(copy)) ? ok(copy as VerifiedEvent) : fail('invalid', 'signature is invalid');
  }
  return ok(copy as VerifiedEvent);
}

const BAD_PUBKEY = 'pubkey is not a valid secp256k1 x-only public key';

/** The id matches, so the pubkey is 64 lowercase hex digits (the serialisation checks it), and so is the sig. */
function verifyNative(copy: NostrEvent): Result<VerifiedEvent> {
  if (!native) throw new Error('nip01.verifySignature: the native backend is not loaded');
  const verdict = native.verify(copy.id, copy.sig, copy.pubkey);
  if (verdict === 'valid') return ok(copy as VerifiedEvent);
  return fail('invalid', verdict === 'bad-pubkey' ? BAD_PUBKEY : 'signature is invalid');
}

/**
 * A stored event as a REQ answer sends it: its JSON text, written once from the stored columns, and what NIP-01's
 * order and the merge of several filters need.
 */
export interface EventText {
  readonly id: string;
  readonly created_at: number;
  readonly json: string;
}

/**
 * NIP-01's event object as JSON text, its tags given as JSON text (as the store returns them): the tags are neither
 * parsed nor written again. id, pubkey and sig are lowercase hex (checked before anything is stored), so they need no
 * escaping; the order of the keys is JSON.stringify's of a NostrEvent.
 */
export function eventJson(ev: Omit<NostrEvent, 'tags'>, tagsJson: string): string {
  return (
    `{"id":"${ev.id}","pubkey":"${ev.pubkey}","created_at":${ev.created_at},"kind":${ev.kind},"tags":${tagsJson},` +
    `"content":${JSON.stringify(ev.content)},"sig":"${ev.sig}"}`
  );
}

/** The value of the first tag named `name` (its second element), or undefined. */
export function firstTagValue(ev: Pick<NostrEvent, 'tags'>, name: string): string | undefined {
  for (const tag of ev.tags) {
    if (tag[0] === name) return tag[1];
  }
  return undefined;
}
