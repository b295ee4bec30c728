/**
 * Rejections as values. Every check in `nips/` returns either the accepted value or a
 * `Rejection` that already carries its NIP-01 prefix, so callers never rewrite messages:
 * `relay/` sends `message` as the OK/CLOSED text, `api/` maps `prefix` to an HTTP status.
 */

/** NIP-01 machine-readable prefixes, plus NIP-42 `auth-required` and `unsupported` (CLOSED). */
export type Prefix =
  | 'invalid'
  | 'blocked'
  | 'rate-limited'
  | 'duplicate'
  | 'restricted'
  | 'auth-required'
  | 'error'
  | 'pow'
  | 'mute'
  | 'unsupported';

export interface Rejection {
  readonly prefix: Prefix;
  /** The full wire text, prefix included: `"invalid: id does not match the event hash"`. */
  readonly message: string;
}

export function rejection(prefix: Prefix, text: string): Rejection {
  return { prefix, message: `${prefix}: ${text}` };
}

/** The text after the prefix, `"id does not match the event hash"`: for a message that carries no NIP-01 prefix (HTTP). */
export function reasonOf(r: Rejection): string {
  return r.message.slice(r.prefix.length + 2);
}

export type Result<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly rejection: Rejection };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(prefix: Prefix, text: string): Result<T> {
  return { ok: false, rejection: rejection(prefix, text) };
}

/** Re-types a failed result for a different value type (the rejection is passed through as is). */
export function failWith<T = never>(r: Rejection): Result<T> {
  return { ok: false, rejection: r };
}
