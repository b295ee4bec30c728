// Email verification: POST /v1/me/email/verification sends the link again (PATCH /v1/me sends the first one when the
// email changes); GET /v1/email/verify?token=… is the link itself, public, answering a small HTML page to a browser
// and JSON to anything else. The rules (single use, 24 hours, rate limits) are in core/accounts/email-verification.ts.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SendResult, VerifyOutcome } from '../core/accounts/index.js';
import { callerOf } from './auth.js';
import { apiError } from './errors.js';
import type { ApiServices } from './services.js';
import { escapeHtml } from '../lib/html.js';

/** The send's outcome, as the `email_verification` field of PATCH /v1/me shows it. */
export function sendView(r: SendResult): { status: string; message: string; retry_after_seconds?: number } {
  switch (r.status) {
    case 'sent':
      return { status: 'sent', message: 'a verification link was sent to the address; it works once, within 24 hours' };
    case 'not_configured':
      return {
        status: 'not_configured',
        message: 'this server sends no email (SMTP_URL is not set): the address is stored unverified',
      };
    case 'send_failed':
      return {
        status: 'send_failed',
        message:
          'the mail server did not accept the verification email; ask again later (POST /v1/me/email/verification)',
      };
    case 'rate_limited':
      return {
        status: 'rate_limited',
        message: `too many verification emails to this ${r.scope === 'account' ? 'account' : 'address'}; ask again in ${r.retryAfterSeconds} s (POST /v1/me/email/verification)`,
        retry_after_seconds: r.retryAfterSeconds,
      };
    case 'no_user':
      return { status: 'not_applicable', message: 'your account no longer exists' };
  }
}

const verifyFailures: Record<Exclude<VerifyOutcome['status'], 'verified'>, string> = {
  unknown: 'this verification link is not known; ask for a new one',
  used: 'this verification link was already used',
  expired: 'this verification link has expired (links work for 24 hours); ask for a new one',
  address_changed: "this link was sent to an address that is no longer the account's email",
};

function page(title: string, text: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></body></html>`;
}

const wantsHtml = (req: FastifyRequest) => (req.headers.accept ?? '').includes('text/html');

function htmlReply(reply: FastifyReply, status: number, title: string, text: string): FastifyReply {
  return reply
    .code(status)
    .header('Content-Security-Policy', "default-src 'none'")
    .header('Cache-Control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(page(title, text));
}

export function registerEmailRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { access, profiles, emailVerification } = deps;

  http.post(
    '/v1/me/email/verification',
    access('user', {
      tags: ['account'],
      summary: 'Send the verification link for your email address again',
      response: {
        202: {
          type: 'object',
          required: ['status', 'message', 'email'],
          properties: {
            status: { type: 'string', enum: ['sent'] },
            message: { type: 'string' },
            email: { type: 'string' },
          },
        },
      },
    }),
    async (req, reply) => {
      const caller = callerOf(req);
      const profile = await profiles.get(caller.user.id);
      if (!profile) throw apiError('user_not_found', 'your account no longer exists');
      if (!profile.email)
        throw apiError('email_not_set', 'your account has no email address; set one with PATCH /v1/me');
      if (profile.emailVerified) throw apiError('email_already_verified');
      const sent = await emailVerification.send(caller.user.id, profile.email);
      switch (sent.status) {
        case 'sent':
          return reply.code(202).send({ ...sendView(sent), email: profile.email });
        case 'not_configured':
          throw apiError('email_not_configured');
        case 'send_failed':
          throw apiError('email_send_failed');
        case 'rate_limited':
          throw apiError('rate_limited', sendView(sent).message, undefined, {
            'Retry-After': String(sent.retryAfterSeconds),
          });
        case 'no_user':
          throw apiError('user_not_found', 'your account no longer exists');
      }
    },
  );

  http.get<{ Querystring: { token: string } }>(
    '/v1/email/verify',
    access('public', {
      tags: ['account'],
      summary: 'The link of a verification email: confirms the address (HTML for a browser, else JSON)',
      querystring: {
        type: 'object',
        required: ['token'],
        properties: { token: { type: 'string', minLength: 1, maxLength: 200 } },
      },
      response: {
        200: {
          type: 'object',
          required: ['verified', 'email'],
          properties: { verified: { type: 'boolean', enum: [true] }, email: { type: 'string' } },
        },
      },
    }),
    async (req, reply) => {
      const outcome = await emailVerification.verify(req.query.token);
      if (outcome.status !== 'verified') {
        const error = apiError('email_token_invalid', verifyFailures[outcome.status], { check: outcome.status });
        if (wantsHtml(req)) return htmlReply(reply, error.statusCode, 'Email address not confirmed', error.message);
        throw error;
      }
      if (wantsHtml(req))
        return htmlReply(
          reply,
          200,
          'Email address confirmed',
          `${outcome.email} is now the confirmed address of your NostrX account.`,
        );
      return { verified: true, email: outcome.email };
    },
  );
}
