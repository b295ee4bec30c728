// Sessions: POST /v1/sessions (NIP-98 only) returns a bearer token and its expiry; GET /v1/sessions lists the
// caller's live sessions; DELETE /v1/sessions/current and /v1/sessions/:id revoke one. A user only ever sees
// and revokes their own sessions (another user's id answers 404, as an unknown one does).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SessionRecord } from '../core/accounts/index.js';
import { callerOf } from './auth.js';
import { apiError } from './errors.js';
import type { ApiServices } from './services.js';
import { uuid } from './schemas.js';

interface CreateBody {
  extension_id?: string;
  extension_version?: string;
  browser_name?: string;
  browser_version?: string;
  os?: string;
}

const shortText = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;

async function emptyBodyIsEmptyObject(req: FastifyRequest): Promise<void> {
  if (req.body === undefined) req.body = {};
}

function sessionView(s: SessionRecord, currentId: string | undefined, primaryPubkey: string) {
  return {
    id: s.id,
    pubkey: s.pubkey ?? primaryPubkey,
    extension_id: s.extensionId,
    extension_version: s.extensionVersion,
    browser_name: s.browserName,
    browser_version: s.browserVersion,
    os: s.os,
    ip_address: s.ipAddress,
    created_at: s.createdAt,
    expires_at: s.expiresAt,
    last_used_at: s.lastUsedAt,
    current: s.id === currentId,
  };
}

export function registerSessionRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { access, sessions } = deps;

  const signed = access('signed', {
    tags: ['sessions'],
    summary: 'Start a session: a bearer token for the following calls (NIP-98 required)',
    body: {
      type: 'object',
      additionalProperties: false,
      properties: {
        extension_id: shortText(64),
        extension_version: shortText(20),
        browser_name: shortText(50),
        browser_version: shortText(50),
        os: shortText(50),
      },
    },
    response: {
      201: {
        type: 'object',
        required: ['token', 'expires_at', 'session'],
        properties: {
          token: { type: 'string', description: 'Send as `Authorization: Bearer <token>`; shown only once' },
          expires_at: { type: 'string', format: 'date-time' },
          session: { $ref: 'Session#' },
        },
      },
    },
  });
  http.post<{ Body: CreateBody | undefined }>(
    '/v1/sessions',
    // The body is optional: without one the session is recorded with extension_id "api".
    { ...signed, preValidation: [deps.hooks.signed, emptyBodyIsEmptyObject] },
    async (req, reply) => {
      const caller = callerOf(req);
      const b = req.body ?? {};
      const { token, session } = await sessions.create(caller.user, {
        pubkey: caller.pubkey,
        extensionId: b.extension_id ?? 'api',
        extensionVersion: b.extension_version,
        browserName: b.browser_name,
        browserVersion: b.browser_version,
        os: b.os,
        ip: req.ip,
      });
      return reply
        .code(201)
        .send({ token, expires_at: session.expiresAt, session: sessionView(session, session.id, caller.user.pubkey) });
    },
  );

  http.get(
    '/v1/sessions',
    access('user', {
      tags: ['sessions'],
      summary: 'Your live sessions (not expired, not revoked)',
      response: {
        200: {
          type: 'object',
          required: ['sessions'],
          properties: { sessions: { type: 'array', items: { $ref: 'Session#' } } },
        },
      },
    }),
    async (req) => {
      const caller = callerOf(req);
      return {
        sessions: (await sessions.list(caller.user.id)).map((s) =>
          sessionView(s, caller.sessionId, caller.user.pubkey),
        ),
      };
    },
  );

  http.delete(
    '/v1/sessions/current',
    access('user', {
      tags: ['sessions'],
      summary: 'Sign out: revoke the session this request is made with',
      response: { 204: { type: 'null' } },
    }),
    async (req, reply) => {
      const caller = callerOf(req);
      if (!caller.sessionId)
        throw apiError('no_session', 'this request was signed with NIP-98, not made with a session token');
      await sessions.revoke(caller.user.id, caller.sessionId, 'signed out');
      return reply.code(204).send();
    },
  );

  http.delete<{ Params: { id: string } }>(
    '/v1/sessions/:id',
    access('user', {
      tags: ['sessions'],
      summary: 'Revoke one of your sessions',
      params: { type: 'object', required: ['id'], properties: { id: uuid } },
      response: { 204: { type: 'null' } },
    }),
    async (req, reply) => {
      const caller = callerOf(req);
      if (!(await sessions.revoke(caller.user.id, req.params.id, 'revoked by the user')))
        throw apiError('session_not_found');
      return reply.code(204).send();
    },
  );
}
