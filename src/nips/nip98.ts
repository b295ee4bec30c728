/**
 * NIP-98 HTTP auth: `Authorization: Nostr <base64(JSON kind-27235 event)>`.
 *
 * Checks, in this order, each with a stable code for logs and metrics: missing, scheme,
 * too-long, base64, json, shape, kind, created_at, url, method, payload, signature. The
 * signature (the only expensive check) runs last, so a forged header costs a hash at most.
 * Replay protection (remember `eventId` for about 2 × window) is the caller's job.
 */
import { createHash } from 'node:crypto';
import { createdAtOutside, firstTagValue, parseEvent, verifySignature } from './nip01.js';
import type { VerifiedEvent } from './nip01.js';
import { HTTPAuth } from './kinds.js';
import { reasonOf } from './result.js';

export interface HttpAuthOptions {
  /** The absolute URL as the client sees it (scheme, host, port, path and query). Compared exactly. */
  url: string;
  method: string;
  /** The exact request body bytes, when the request has one. */
  body?: Uint8Array;
  nowSeconds: number;
  /** How far created_at may be from now, on either side. */
  windowSeconds: number;
  maxHeaderLength: number;
}

export type HttpAuthCheck =
  | 'missing'
  | 'scheme'
  | 'too-long'
  | 'base64'
  | 'json'
  | 'shape'
  | 'kind'
  | 'signature'
  | 'created_at'
  | 'url'
  | 'method'
  | 'payload';

export type HttpAuthResult =
  | { ok: true; pubkey: string; eventId: string; event: VerifiedEvent }
  | { ok: false; check: HttpAuthCheck; message: string };

/** sha256 hex of zero bytes: the only payload tag allowed on a request without a body. */
export const EMPTY_PAYLOAD_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const SCHEME = /^Nostr\s+/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function refuse(check: HttpAuthCheck, message: string): HttpAuthResult {
  return { ok: false, check, message };
}

/** sha256 hex of the exact bytes, as the `payload` tag carries it. */
export function payloadHash(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

/** Requires nip01.initVerifier() to have run. */
export function verifyAuthorization(header: string | undefined, opts: HttpAuthOptions): HttpAuthResult {
  if (header === undefined || header.trim() === '') return refuse('missing', 'Authorization header is missing');
  const scheme = SCHEME.exec(header);
  if (!scheme) return refuse('scheme', 'Authorization header must use the Nostr scheme');
  if (header.length > opts.maxHeaderLength) {
    return refuse(
      'too-long',
      `Authorization header is ${header.length} characters, the limit is ${opts.maxHeaderLength}`,
    );
  }
  const token = header.slice(scheme[0].length).trim();
  if (token === '') return refuse('base64', 'Authorization header has no token');
  if (!BASE64.test(token)) return refuse('base64', 'Authorization token is not valid base64');

  let raw: unknown;
  try {
    raw = JSON.parse(utf8.decode(Buffer.from(token, 'base64')));
  } catch {
    return refuse('json', 'Authorization token is not UTF-8 JSON');
  }
  const parsed = parseEvent(raw);
  if (!parsed.ok) return refuse('shape', `Authorization event is malformed: ${parsed.rejection.message}`);
  const ev = parsed.value;

  if (ev.kind !== HTTPAuth) return refuse('kind', `Authorization event must be kind ${HTTPAuth}, got ${ev.kind}`);
  const outside = createdAtOutside(ev.created_at, opts.nowSeconds, opts.windowSeconds, opts.windowSeconds);
  if (outside) return refuse('created_at', `Authorization event created_at is ${outside}`);
  const u = firstTagValue(ev, 'u');
  if (u === undefined) return refuse('url', 'Authorization event has no u tag');
  if (u !== opts.url) return refuse('url', 'Authorization event u tag does not match the request URL');
  const method = firstTagValue(ev, 'method');
  if (method === undefined) return refuse('method', 'Authorization event has no method tag');
  if (method.toUpperCase() !== opts.method.toUpperCase()) {
    return refuse(
      'method',
      `Authorization event method tag does not match the request method ${opts.method.toUpperCase()}`,
    );
  }
  const payload = firstTagValue(ev, 'payload')?.toLowerCase();
  if (opts.body !== undefined && opts.body.length > 0) {
    if (payload === undefined)
      return refuse('payload', 'Authorization event has no payload tag, required for a request body');
    if (payload !== payloadHash(opts.body))
      return refuse('payload', 'Authorization event payload tag does not match the request body');
  } else if (payload !== undefined && payload !== EMPTY_PAYLOAD_HASH) {
    return refuse('payload', 'Authorization event payload tag does not match the empty request body');
  }

  const checked = verifySignature(ev);
  if (!checked.ok) return refuse('signature', `Authorization event ${reasonOf(checked.rejection)}`);
  return { ok: true, pubkey: checked.value.pubkey, eventId: checked.value.id, event: checked.value };
}
