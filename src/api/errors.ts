// The API's error catalog: every error the HTTP API answers is listed here once, with its HTTP status and default
// message. Handlers throw `apiError(code, …)`; the error handler (and the 404 handler) serialise every failure,
// fastify's own included (validation, malformed JSON, oversized bodies, unknown media types), as
// `{ "error": { "code", "message", …details } }`. A 5xx body carries a code and a generic message only; the
// details go to the log. Admission rejections map to codes by their NIP-01 prefix (one table, `admissionErrors`),
// so the relay's OK answer and the API's status cannot disagree.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Prefix } from '../nips/result.js';
import { isUnavailable } from '../core/ops/index.js';

export const catalog = {
  validation_failed: { status: 400, message: 'the request is not valid' },
  malformed_json: { status: 400, message: 'the request body is not valid JSON' },
  preflight_invalid: {
    status: 400,
    message: 'an OPTIONS request to /v1 is a CORS preflight: it needs Origin and Access-Control-Request-Method',
  },
  no_session: { status: 400, message: 'this request was not authenticated with a session token' },
  event_invalid: { status: 400, message: 'the event is invalid' },
  relay_url_invalid: { status: 400, message: 'the relay URL is not allowed' },
  webhook_signature_invalid: { status: 400, message: 'the webhook signature is missing or invalid' },
  webhook_payload_invalid: { status: 400, message: 'the webhook payload cannot be applied' },
  plan_not_sold: { status: 400, message: 'this plan and billing cycle cannot be bought here' },
  extensionpay_key_invalid: { status: 400, message: 'ExtensionPay does not know this key' },
  extensionpay_plan_unmapped: { status: 400, message: 'the ExtensionPay plan paid for is not sold here' },
  identity_proof_invalid: { status: 400, message: 'the X-Nostr-Identity-Proof header is missing or invalid' },
  email_not_set: { status: 400, message: 'your account has no email address' },
  email_token_invalid: { status: 400, message: 'this verification link is not valid' },
  unauthorized: { status: 401, message: 'authentication failed' },
  forbidden: { status: 403, message: 'not allowed' },
  not_admin: { status: 403, message: 'this route is for relay administrators' },
  not_author: { status: 403, message: 'the event must be signed by the authenticated pubkey' },
  not_your_event: { status: 403, message: 'this event belongs to another user' },
  plan_required: { status: 403, message: 'your plan does not include this feature' },
  relay_limit_reached: { status: 403, message: 'your plan allows no more relays' },
  account_unavailable: { status: 403, message: 'this account is not active' },
  primary_key_required: { status: 403, message: "only the account's primary key may do this" },
  identity_limit_reached: { status: 403, message: 'your account has as many keys as it may have' },
  event_blocked: { status: 403, message: 'the event was refused' },
  not_found: { status: 404, message: 'no such route' },
  event_not_found: { status: 404, message: 'no such event' },
  session_not_found: { status: 404, message: 'no such session' },
  relay_not_found: { status: 404, message: 'no such relay' },
  user_not_found: { status: 404, message: 'no such user' },
  plan_not_found: { status: 404, message: 'no such plan' },
  billing_customer_not_found: { status: 404, message: 'you have no Stripe customer yet' },
  invoice_not_found: { status: 404, message: 'you have no Lightning invoice with this payment hash' },
  relay_exists: { status: 409, message: 'this relay is already in your list' },
  billing_account_linked_elsewhere: { status: 409, message: 'this payment account is linked to another account' },
  identity_not_found: { status: 404, message: 'this key is not linked to your account' },
  identity_taken: { status: 409, message: 'this key belongs to another account' },
  identity_is_primary: { status: 409, message: "the account's primary key cannot be unlinked" },
  email_already_verified: { status: 409, message: 'your email address is already verified' },
  body_too_large: { status: 413, message: 'the request body is too large' },
  unsupported_media_type: { status: 415, message: 'the request body must be application/json' },
  quota_exceeded: { status: 429, message: 'the quota of your plan is used up' },
  rate_limited: { status: 429, message: 'too many requests' },
  internal_error: { status: 500, message: 'internal error' },
  payment_provider_unavailable: {
    status: 502,
    message: 'the payment provider could not complete the request; nothing was changed',
  },
  webhook_not_configured: { status: 503, message: 'payment webhooks are not configured on this server' },
  billing_not_configured: { status: 503, message: 'this payment provider is not configured on this server' },
  email_send_failed: { status: 502, message: 'the mail server did not accept the verification email; try again later' },
  email_not_configured: { status: 503, message: 'this server sends no email (SMTP_URL is not set)' },
  unavailable: { status: 503, message: 'the service could not complete the request, try again later' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof catalog;

/** Extra, machine-readable facts an error may carry (each one is declared in `errorBodySchema`). */
export interface ErrorDetails {
  /** The request field at fault (validation), e.g. `email` or `data.plan`. */
  field?: string;
  /** Where the field is: body, querystring, params, headers. */
  location?: string;
  /** The NIP-98 or session check that failed (401). */
  check?: string;
  /** The plan that would allow the action (403 plan_required / relay_limit_reached). */
  plan?: string;
  /** The configuration key that is not set (503 billing_not_configured). */
  setting?: string;
  quota?: { plan: string; period: string; limit: number; used: number; resets_at: string };
}

export class ApiError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string = catalog[code].message,
    readonly details: ErrorDetails = {},
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.statusCode = catalog[code].status;
  }
}

export function apiError(
  code: ErrorCode,
  message?: string,
  details?: ErrorDetails,
  headers?: Record<string, string>,
): ApiError {
  return new ApiError(code, message, details, headers);
}

/** NIP-01 prefix of an admission rejection → API error code (the relay sends the same prefix in its OK). */
export const admissionErrors: Record<Exclude<Prefix, 'duplicate'>, ErrorCode> = {
  invalid: 'event_invalid',
  pow: 'event_invalid',
  unsupported: 'event_invalid',
  blocked: 'event_blocked',
  restricted: 'event_blocked',
  mute: 'event_blocked',
  'auth-required': 'not_author',
  'rate-limited': 'quota_exceeded',
  error: 'unavailable',
};

export const errorBodySchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: Object.keys(catalog) },
        message: { type: 'string' },
        field: { type: 'string' },
        location: { type: 'string' },
        check: { type: 'string' },
        plan: { type: 'string' },
        setting: { type: 'string' },
        quota: {
          type: 'object',
          properties: {
            plan: { type: 'string' },
            period: { type: 'string' },
            limit: { type: 'integer' },
            used: { type: 'integer' },
            resets_at: { type: 'string', format: 'date-time' },
          },
        },
      },
    },
  },
} as const;

/** The error responses every route may give, for its schema (and so for the OpenAPI document). */
export const errorResponses = {
  '4xx': { $ref: 'Error#' },
  '5xx': { $ref: 'Error#' },
} as const;

function body(code: ErrorCode, message: string, details: ErrorDetails = {}) {
  return { error: { code, message, ...details } };
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `instancePath` /data/plan → data.plan, plus the property a `required`/`additionalProperties` error names. */
function fieldOf(e: AjvError): string {
  const path = e.instancePath.split('/').filter(Boolean);
  if (e.keyword === 'required' && typeof e.params.missingProperty === 'string') path.push(e.params.missingProperty);
  if (e.keyword === 'additionalProperties' && typeof e.params.additionalProperty === 'string')
    path.push(e.params.additionalProperty);
  return path.join('.');
}

function validationMessage(e: AjvError, location: string, field: string): string {
  if (e.keyword === 'required') return `${location}.${field} is required`;
  if (e.keyword === 'additionalProperties') return `${location}.${field} is not an allowed field`;
  if (field === '' && e.keyword === 'type') return `the request ${location} must be a JSON ${String(e.params.type)}`;
  return `${location}${field ? `.${field}` : ''} ${e.message ?? 'is invalid'}`;
}

/** Maps fastify's own errors (by code, never by message text) to catalog entries. */
function fromFastify(err: FastifyError): ApiError | undefined {
  const validation = (err as FastifyError & { validation?: AjvError[] }).validation;
  if (validation && validation.length > 0) {
    const first = validation[0] as AjvError;
    const location = (err as FastifyError & { validationContext?: string }).validationContext ?? 'body';
    const field = fieldOf(first);
    return apiError('validation_failed', validationMessage(first, location, field), {
      field: field || location,
      location,
    });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return apiError('body_too_large', err.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return apiError('unsupported_media_type', 'unsupported Content-Type; send application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return apiError('validation_failed', 'the request body does not match its Content-Length', {
        field: 'content-length',
        location: 'headers',
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return apiError('malformed_json');
    default:
      return undefined;
  }
}

export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (typeof err === 'object' && err !== null && 'code' in err) return fromFastify(err as FastifyError);
  return undefined;
}

export function sendApiError(reply: FastifyReply, e: ApiError): FastifyReply {
  return reply
    .code(e.statusCode)
    .headers(e.headers)
    .send(body(e.code, e.message, e.details));
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = toApiError(err);
  if (known) return sendApiError(reply, known);
  // A client error fastify raised that we have no entry for keeps its status, with a generic code.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return sendApiError(reply, apiError(err.statusCode === 404 ? 'not_found' : 'validation_failed', err.message));
  }
  // The database or Redis not answering is an outage, not a bug: the client is told to try again shortly.
  if (isUnavailable(err)) {
    req.log.warn({ err, method: req.method, url: req.url }, 'request failed: a dependency is unavailable');
    return sendApiError(reply, apiError('unavailable', undefined, undefined, { 'retry-after': '1' }));
  }
  req.log.error({ err, method: req.method, url: req.url }, 'request failed');
  return sendApiError(reply, apiError('internal_error'));
}

/**
 * Errors fastify raises before routing (a malformed percent-encoding in the URL): answered with the catalog's body
 * like every other error, not fastify's default one.
 */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.code === 'FST_ERR_BAD_URL')
    return sendApiError(reply, apiError('validation_failed', 'the URL is not valid (malformed percent-encoding)'));
  return sendApiError(reply, apiError('validation_failed', err.message));
}

export function notFoundHandler(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendApiError(reply, apiError('not_found', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`));
}
