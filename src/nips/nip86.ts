/**
 * NIP-86 relay management API: JSON-RPC-like `{"method", "params"}` bodies sent to the relay
 * URI with `Content-Type: application/nostr+json+rpc` and NIP-98 auth (payload required).
 * Replies are `{"result": …, "error"?: "…"}`.
 */
import { isHex64 } from './nip01.js';
import { fail, ok } from './result.js';
import type { Result } from './result.js';

export const supportedMethods = [
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
] as const;

type SupportedMethod = (typeof supportedMethods)[number];

export interface RpcRequest {
  method: SupportedMethod;
  params: unknown[];
}

export const contentType = 'application/nostr+json+rpc';

const MAX_REASON_LENGTH = 1000;

function isSupported(method: string): method is SupportedMethod {
  return (supportedMethods as readonly string[]).includes(method);
}

/**
 * `raw` is the already-parsed JSON body. `params` may be omitted (treated as []). A method we
 * do not implement is refused with 'unsupported:'; every other problem is 'invalid:'.
 */
export function parseRpcRequest(raw: unknown): Result<RpcRequest> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return fail('invalid', 'request must be a JSON object');
  const { method, params } = raw as Record<string, unknown>;
  if (typeof method !== 'string' || method === '') return fail('invalid', 'request must have a "method" string');
  if (params !== undefined && !Array.isArray(params)) return fail('invalid', '"params" must be an array');
  if (!isSupported(method)) return fail('unsupported', `method "${method.slice(0, 64)}" is not supported`);
  return ok({ method, params: params === undefined ? [] : (params as unknown[]).slice() });
}

/** params[index] as a 64-character lowercase hex pubkey. */
export function pubkeyParam(params: readonly unknown[], index = 0): Result<string> {
  const v = params[index];
  return isHex64(v) ? ok(v) : fail('invalid', `params[${index}] must be a 64-character lowercase hex pubkey`);
}

/** params[index] as a 64-character lowercase hex event id. */
export function eventIdParam(params: readonly unknown[], index = 0): Result<string> {
  const v = params[index];
  return isHex64(v) ? ok(v) : fail('invalid', `params[${index}] must be a 64-character lowercase hex event id`);
}

/** Optional reason at params[index]: undefined when absent or null, else a string of at most MAX_REASON_LENGTH. */
export function reasonParam(params: readonly unknown[], index = 1): Result<string | undefined> {
  const v = params[index];
  if (v === undefined || v === null) return ok(undefined);
  if (typeof v !== 'string') return fail('invalid', `params[${index}] (reason) must be a string`);
  if (v.length > MAX_REASON_LENGTH) {
    return fail('invalid', `params[${index}] (reason) is ${v.length} characters, the limit is ${MAX_REASON_LENGTH}`);
  }
  return ok(v);
}
