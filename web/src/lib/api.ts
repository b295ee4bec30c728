// The page's only way to read or change anything: the service's JSON API. User calls carry the session token
// (Authorization: Bearer); admin calls, session creation and account erasure are signed one by one with NIP-98
// by the user's signer, as the API requires. Every failure becomes an ApiFailure with the API's error code.
import { nip98Header } from './nip98.js';
import { NoSignerError, type Nip07 } from './signer.js';

export interface ErrorBody {
  code: string;
  message: string;
  field?: string;
  plan?: string;
  quota?: { plan: string; period: string; limit: number; used: number; resets_at: string };
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message);
  }
  get code(): string {
    return this.body.code;
  }
}

export interface ApiOptions {
  readonly origin: string;
  readonly token: () => string | null;
  readonly signer: () => Nip07 | null;
  /** Told when the server no longer takes the session token (revoked elsewhere, expired). */
  readonly onSessionEnded: (why: string) => void;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

async function readReply<T>(res: Response): Promise<T> {
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (res.ok) return parsed as T;
  const error = (parsed as { error?: ErrorBody | string } | undefined)?.error;
  // NIP-86 answers failures as { result: null, error: "code: message" }; the API as { error: { code, message } }.
  if (typeof error === 'string')
    throw new ApiFailure(res.status, { code: error.split(':')[0] ?? 'error', message: error });
  throw new ApiFailure(
    res.status,
    error ?? { code: `http_${res.status}`, message: `the server answered ${res.status} ${res.statusText}` },
  );
}

export class Api {
  constructor(private readonly o: ApiOptions) {}

  /** A call with the session token. */
  async call<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const token = this.o.token();
    if (!token) throw new ApiFailure(401, { code: 'unauthorized', message: 'you are signed out' });
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await fetch(this.o.origin + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(payload !== undefined ? { body: payload } : {}),
    });
    if (res.status === 401) {
      this.o.onSessionEnded('Your session ended (signed out elsewhere, revoked or expired). Sign in again.');
    }
    return readReply<T>(res);
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  /** A call signed with NIP-98 by the signer (admin routes, session creation, erasure). */
  async signed<T>(method: Method, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const signer = this.o.signer();
    if (!signer) throw new NoSignerError();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const url = this.o.origin + path;
    const authorization = await nip98Header(signer, url, method, payload);
    const res = await fetch(url, {
      method,
      headers: { authorization, ...(payload !== undefined ? { 'content-type': contentType } : {}) },
      ...(payload !== undefined ? { body: payload } : {}),
    });
    return readReply<T>(res);
  }

  /** NIP-86 relay management: JSON-RPC at the relay's own URL. Resolves to `result`, throws on `error`. */
  async rpc<T>(method: string, params: unknown[] = []): Promise<T> {
    const reply = await this.signed<{ result: T; error?: string }>(
      'POST',
      '/',
      { method, params },
      'application/nostr+json+rpc',
    );
    if (reply.error) throw new ApiFailure(200, { code: 'rpc_error', message: reply.error });
    return reply.result;
  }
}
