// NIP-86 relay management: JSON-RPC at the relay's own URL (POST / with Content-Type application/nostr+json+rpc),
// NIP-98 by an admin pubkey with the payload tag required (every request has a body) and `u` = the relay's
// http URL. Replies are NIP-86's `{ "result": …, "error"?: "…" }`, failures included: 401 (auth), 403 (not an
// admin), 415 (media type), 400 (a request the method cannot take).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { runRpc } from '../core/moderation/index.js';
import * as nip86 from '../nips/nip86.js';
import { callerOf } from './auth.js';
import { apiError, toApiError } from './errors.js';
import type { ApiServices } from './services.js';

const rpcReply = {
  $id: 'Nip86Reply',
  type: 'object',
  required: ['result'],
  properties: { result: {}, error: { type: 'string' } },
} as const;

async function requireRpcMediaType(req: FastifyRequest): Promise<void> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== nip86.contentType)
    throw apiError('unsupported_media_type', `send NIP-86 requests as ${nip86.contentType}`);
}

function rpcErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = toApiError(err);
  if (!known) {
    req.log.error({ err }, 'NIP-86 request failed');
    return reply.code(500).send({ result: null, error: 'error: internal error' });
  }
  return reply
    .code(known.statusCode)
    .headers(known.headers)
    .send({ result: null, error: `${known.code}: ${known.message}` });
}

export function registerNip86Route(http: FastifyInstance, deps: ApiServices): void {
  http.addSchema(rpcReply);
  http.post(
    '/',
    {
      preValidation: [requireRpcMediaType, deps.hooks.admin],
      errorHandler: rpcErrorHandler,
      schema: {
        tags: ['admin'],
        summary: 'NIP-86 relay management (JSON-RPC)',
        description: `Methods: ${nip86.supportedMethods.join(', ')}. Admin pubkeys only (ADMIN_PUBKEYS).`,
        security: [{ nip98: [] }],
        consumes: [nip86.contentType],
        body: {
          type: 'object',
          required: ['method'],
          properties: {
            method: { type: 'string', minLength: 1, maxLength: 64 },
            params: { type: 'array', maxItems: 16 },
          },
        },
        response: { 200: { $ref: 'Nip86Reply#' }, '4xx': { $ref: 'Nip86Reply#' }, '5xx': { $ref: 'Nip86Reply#' } },
      },
    },
    async (req, reply) => {
      const parsed = nip86.parseRpcRequest(req.body);
      if (!parsed.ok) return reply.code(400).send({ result: null, error: parsed.rejection.message });
      const answer = await runRpc(deps.bans, parsed.value, callerOf(req).pubkey);
      if (!answer.ok) return reply.code(400).send({ result: null, error: answer.rejection.message });
      return { result: answer.value };
    },
  );
}
