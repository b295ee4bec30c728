// The API's one body parser: JSON (application/json and NIP-86's application/nostr+json+rpc), kept as the exact
// bytes received (`req.rawBody`, which the NIP-98 payload hash and the webhook HMAC cover) and as parsed JSON.
// Every other media type is refused with 415; bodies over the limit with 413 (fastify's bodyLimit).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import * as nip86 from '../nips/nip86.js';
import { apiError } from './errors.js';

/**
 * Keys that could reach an object's prototype if a handler ever merged a parsed body into an object, and strings
 * PostgreSQL's text cannot hold (a NUL), which would otherwise fail the handler's statement as an internal error.
 */
function reviver(key: string, value: unknown): unknown {
  if (key === '__proto__') throw new SyntaxError('the key "__proto__" is not allowed');
  if ((typeof value === 'string' && value.includes('\u0000')) || key.includes('\u0000')) {
    throw new SyntaxError('a string holds a NUL (U+0000) character, which is not accepted');
  }
  if (key === 'constructor' && typeof value === 'object' && value !== null && 'prototype' in value) {
    throw new SyntaxError('the key "constructor.prototype" is not allowed');
  }
  return value;
}

function parseJson(req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void): void {
  req.rawBody = body;
  if (body.length === 0) return done(null, undefined);
  try {
    done(null, JSON.parse(body.toString('utf8'), reviver));
  } catch (err) {
    done(apiError('malformed_json', `the request body is not valid JSON: ${(err as Error).message}`));
  }
}

export function useJsonBodies(http: FastifyInstance): void {
  http.decorateRequest('rawBody', undefined);
  http.removeAllContentTypeParsers();
  http.addContentTypeParser(['application/json', nip86.contentType], { parseAs: 'buffer' }, parseJson);
}
