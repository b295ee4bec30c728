/**
 * NIP-77 (Negentropy v1 set reconciliation), the relay's side: the responder. nostr-tools 2.25 ships the storage,
 * the fingerprints, the bound encoding and the initiator (`lib/esm/nip77.js`, outside its export map, so it is
 * loaded by file path), but its `reconcile` only plays the initiator: given an IdList range it notes what it has and
 * needs and answers nothing. In v1 the responder answers an IdList range with the ids it holds there, so the
 * initiator learns both directions. `respond` is that answer, built on nostr-tools' pieces; messages are bytes in and
 * bytes out (hex on the wire).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Negentropy protocol version 1. */
const PROTOCOL_VERSION = 0x61;
const ID_SIZE = 32;
const FINGERPRINT_SIZE = 16;
const MODE_SKIP = 0;
const MODE_FINGERPRINT = 1;
const MODE_ID_LIST = 2;

interface Item {
  readonly timestamp: number;
  readonly id: Uint8Array;
}

/** What nostr-tools' NegentropyStorageVector offers. */
export interface StorageVector {
  insert(timestamp: number, id: string): void;
  seal(): void;
  size(): number;
  iterate(begin: number, end: number, cb: (item: Item, i: number) => boolean): void;
  findLowerBound(begin: number, end: number, bound: Item): number;
  fingerprint(begin: number, end: number): Uint8Array;
}

/** A growable byte buffer read from the front: the shape nostr-tools' bound codec and splitRange read and write. */
class Bytes {
  private raw: Uint8Array;
  length: number;
  constructor(from?: Uint8Array) {
    this.raw = from ? from.slice() : new Uint8Array(256);
    this.length = from ? from.length : 0;
  }
  unwrap(): Uint8Array {
    return this.raw.subarray(0, this.length);
  }
  extend(buf: Uint8Array | { unwrap(): Uint8Array }): void {
    const bytes = buf instanceof Uint8Array ? buf : buf.unwrap();
    if (this.raw.length < this.length + bytes.length) {
      const grown = new Uint8Array(Math.max(this.raw.length * 2, this.length + bytes.length));
      grown.set(this.raw.subarray(0, this.length));
      this.raw = grown;
    }
    this.raw.set(bytes, this.length);
    this.length += bytes.length;
  }
  shift(): number {
    if (this.length === 0) throw new ProtocolError('the message ends too early');
    const first = this.raw[0]!;
    this.raw = this.raw.subarray(1);
    this.length--;
    return first;
  }
  shiftN(n: number): Uint8Array {
    if (this.length < n) throw new ProtocolError('the message ends too early');
    const out = this.raw.subarray(0, n);
    this.raw = this.raw.subarray(n);
    this.length -= n;
    return out;
  }
}

/** What nostr-tools' Negentropy class offers beyond `reconcile`. */
interface NegentropyCodec {
  lastTimestampIn: number;
  lastTimestampOut: number;
  decodeBound(encoded: Bytes): Item;
  encodeBound(key: Item): { unwrap(): Uint8Array };
  splitRange(lower: number, upper: number, upperBound: Item, o: Bytes): void;
  exceededFrameSizeLimit(n: number): boolean;
}

/** nostr-tools' initiator side. */
interface NegentropyInitiator {
  initiate(): string;
  reconcile(query: string, onhave?: (id: string) => void, onneed?: (id: string) => void): string | null;
}

interface Nip77Module {
  Negentropy: new (storage: StorageVector, frameSizeLimit?: number) => NegentropyCodec & NegentropyInitiator;
  NegentropyStorageVector: new () => StorageVector;
}

// nostr-tools' ESM entry resolves to lib/esm/index.js (from src/ under tsx and from dist/src/ alike); nip77.js is
// beside it.
const entry = createRequire(import.meta.url).resolve('nostr-tools');
const nip77Url = pathToFileURL(path.join(path.dirname(entry), '..', 'esm', 'nip77.js')).href;
const lib = (await import(nip77Url)) as Nip77Module;

export class ProtocolError extends Error {}

function decodeVarInt(buf: Bytes): number {
  let n = 0;
  for (;;) {
    const byte = buf.shift();
    n = n * 128 + (byte & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER) throw new ProtocolError('a number in the message is too large');
    if ((byte & 0x80) === 0) return n;
  }
}

function encodeVarInt(n: number): Uint8Array {
  const out = [n & 0x7f];
  for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) out.unshift((v & 0x7f) | 0x80);
  return Uint8Array.from(out);
}

const INFINITY: Item = { timestamp: Number.MAX_VALUE, id: new Uint8Array(0) };

/** A sealed storage of (created_at, id) pairs: the set one side of a reconciliation holds. */
export function storageOf(items: Iterable<{ readonly createdAt: number; readonly id: string }>): StorageVector {
  const storage = new lib.NegentropyStorageVector();
  for (const it of items) storage.insert(it.createdAt, it.id);
  storage.seal();
  return storage;
}

export interface Responder {
  /** The answer to one initiator message; throws ProtocolError on a malformed one. */
  respond(query: Uint8Array): Uint8Array;
}

/**
 * The responder over a sealed storage. `frameSizeLimit` bounds each answer (bytes before hex; at least 4096): past it
 * the rest of the set is left as one fingerprint range, which the initiator splits in its next message.
 */
export function createResponder(storage: StorageVector, frameSizeLimit = 60_000): Responder {
  const codec = new lib.Negentropy(storage, frameSizeLimit);
  return {
    respond(query) {
      const q = new Bytes(query);
      const out = new Bytes();
      out.extend(Uint8Array.of(PROTOCOL_VERSION));
      const version = q.shift();
      if (version < 0x60 || version > 0x6f)
        throw new ProtocolError('not a negentropy message (bad protocol version byte)');
      // another version: answer with ours alone, as the protocol asks, and the initiator may try again in it
      if (version !== PROTOCOL_VERSION) return out.unwrap();
      codec.lastTimestampIn = codec.lastTimestampOut = 0;
      const size = storage.size();
      let prevBound: Item = { timestamp: 0, id: new Uint8Array(0) };
      let prevIndex = 0;
      let skip = false;
      while (q.length > 0) {
        const o = new Bytes();
        const flushSkip = () => {
          if (!skip) return;
          skip = false;
          o.extend(codec.encodeBound(prevBound));
          o.extend(encodeVarInt(MODE_SKIP));
        };
        const currBound = decodeBoundChecked(codec, q);
        const mode = decodeVarInt(q);
        const lower = prevIndex;
        let upper = storage.findLowerBound(prevIndex, size, currBound);
        if (mode === MODE_SKIP) skip = true;
        else if (mode === MODE_FINGERPRINT) {
          const theirs = q.shiftN(FINGERPRINT_SIZE);
          if (equalBytes(theirs, storage.fingerprint(lower, upper))) skip = true;
          else {
            flushSkip();
            codec.splitRange(lower, upper, currBound, o);
          }
        } else if (mode === MODE_ID_LIST) {
          q.shiftN(decodeVarInt(q) * ID_SIZE); // their ids: the initiator works out the differences from ours
          flushSkip();
          // the responder's part of v1: every id we hold in the range, as far as the frame allows
          const ids = new Bytes();
          let count = 0;
          let endBound = currBound;
          storage.iterate(lower, upper, (item, index) => {
            if (codec.exceededFrameSizeLimit(out.length + o.length + ids.length + 64)) {
              endBound = item;
              upper = index; // the rest of the range goes into the closing fingerprint below
              return false;
            }
            ids.extend(item.id);
            count++;
            return true;
          });
          o.extend(codec.encodeBound(endBound));
          o.extend(encodeVarInt(MODE_ID_LIST));
          o.extend(encodeVarInt(count));
          o.extend(ids);
        } else throw new ProtocolError(`unknown range mode ${mode}`);

        if (codec.exceededFrameSizeLimit(out.length + o.length)) {
          // too much for one message: whatever is left is one range, for the initiator to split again
          out.extend(codec.encodeBound(INFINITY));
          out.extend(encodeVarInt(MODE_FINGERPRINT));
          out.extend(storage.fingerprint(upper, size));
          break;
        }
        out.extend(o);
        prevIndex = upper;
        prevBound = currBound;
      }
      return out.unwrap();
    },
  };
}

export interface Initiator {
  /** The first message (hex), for NEG-OPEN. */
  initiate(): string;
  /**
   * One answer of the responder (hex): the next message, or null when the reconciliation is done; `have` are ids
   * only this side holds, `need` ids only the responder holds (found in this round). Throws on a malformed answer.
   */
  reconcile(answer: string): { next: string | null; have: string[]; need: string[] };
}

/** The initiator, as nostr-tools implements it, over a sealed storage. */
export function createInitiator(storage: StorageVector, frameSizeLimit = 60_000): Initiator {
  const neg = new lib.Negentropy(storage, frameSizeLimit);
  return {
    initiate: () => neg.initiate(),
    reconcile(answer) {
      const have: string[] = [];
      const need: string[] = [];
      const next = neg.reconcile(
        answer,
        (id) => have.push(id),
        (id) => need.push(id),
      );
      return { next, have, need };
    },
  };
}

function decodeBoundChecked(codec: NegentropyCodec, q: Bytes): Item {
  try {
    return codec.decodeBound(q);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(err instanceof Error ? err.message : 'malformed bound');
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Hex on the wire: lowercase or uppercase digits, an even count. */
export function fromHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
