// An HTTP client for the API tests: real requests (global fetch) to a running test app, authenticated the way the
// extension does it, with nostr-tools' nip98.getToken. A JSON body is sent as exactly JSON.stringify(body): the
// bytes getToken hashes into the payload tag. Options bend one thing at a time for the rejection tests.
import { randomBytes } from 'node:crypto';
import * as nip98 from 'nostr-tools/nip98';
import { finalizeEvent, type EventTemplate, type VerifiedEvent } from 'nostr-tools/pure';
import type { Key } from './events.js';

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  // Parsed JSON, read freely by the assertions (any is confined to this test helper).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON that each assertion reads freely
  readonly body: any;
  readonly text: string;
}

export interface CallOptions {
  /** A JSON body, sent as JSON.stringify(body) with Content-Type application/json. */
  readonly body?: unknown;
  /** Exact body bytes instead (no payload tag is computed for them unless `payloadOf` is given). */
  readonly raw?: string | Buffer;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
  /** NIP-98: the URL to sign instead of the request's. */
  readonly signUrl?: string;
  /** NIP-98: the method to sign instead of the request's. */
  readonly signMethod?: string;
  /** NIP-98: sign this value's JSON as the payload instead of the body (undefined: the body; null: no payload tag). */
  readonly payloadOf?: unknown;
  /** NIP-98: change the template before it is signed (kind, created_at, tags). */
  readonly tamper?: (e: EventTemplate) => EventTemplate;
  /** NIP-98: change the signed event (e.g. break its signature). */
  readonly afterSign?: (e: VerifiedEvent) => Record<string, unknown>;
  /** NIP-98: leave out the nonce tag (see ApiClient.token). */
  readonly noNonce?: boolean;
}

/** The port a test app listens on (its config keeps PORT=0 when PUBLIC_URL is set). */
export function portOf(app: { http: { server: { address(): unknown } } }): number {
  return (app.http.server.address() as { port: number }).port;
}

export class ApiClient {
  constructor(readonly base: string) {}

  /**
   * The Authorization header value for one request, as nostr-tools builds it. A random `nonce` tag is added before
   * signing: getToken's event holds only u, method, payload and a created_at in seconds, so two identical requests
   * by one key within one second would be the same event, and the second one is (rightly) refused as a replay.
   */
  async token(key: Key, method: string, path: string, opts: CallOptions = {}): Promise<string> {
    const url = opts.signUrl ?? this.base + path;
    const payload = opts.payloadOf === undefined ? opts.body : opts.payloadOf;
    return nip98.getToken(
      url,
      (opts.signMethod ?? method).toLowerCase(),
      (e) => {
        const withNonce = opts.noNonce ? e : { ...e, tags: [...e.tags, ['nonce', randomBytes(8).toString('hex')]] };
        const template = opts.tamper ? opts.tamper(withNonce) : withNonce;
        const signed = finalizeEvent({ ...template }, key.sk);
        return (opts.afterSign ? opts.afterSign(signed) : signed) as VerifiedEvent;
      },
      true,
      payload === null ? undefined : (payload as Record<string, unknown> | undefined),
    );
  }

  /** A request signed with NIP-98 by `key`. */
  async signed(key: Key, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    const authorization = await this.token(key, method, path, opts);
    return this.request(method, path, { ...opts, headers: { authorization, ...opts.headers } });
  }

  /** A request with a session bearer token. */
  async bearer(token: string, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    return this.request(method, path, { ...opts, headers: { authorization: `Bearer ${token}`, ...opts.headers } });
  }

  /** A request with no Authorization (or the headers given). */
  async request(method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...opts.headers };
    let body: string | Buffer | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    const res = await fetch(this.base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  /** Starts a session for `key` and returns its bearer token. */
  async session(key: Key, details: Record<string, string> = {}): Promise<string> {
    const r = await this.signed(key, 'POST', '/v1/sessions', { body: details });
    if (r.status !== 201) throw new Error(`POST /v1/sessions answered ${r.status}: ${r.text}`);
    return r.body.token as string;
  }
}
