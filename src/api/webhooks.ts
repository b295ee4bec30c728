// POST /v1/webhooks/payments: the payment provider's events (core/billing/payment-webhooks.ts). The signature is checked before
// anything else, validation included, so an unsigned request learns nothing and changes nothing (400).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { webhookTypes, type WebhookPayload } from '../core/billing/index.js';
import { SIGNATURE_HEADER, WEBHOOK_TOLERANCE_SECONDS, verifyWebhookSignature } from '../core/billing/index.js';
import { apiError } from './errors.js';
import type { ApiServices } from './services.js';
import { hex64 } from './schemas.js';

const text = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
const amount = { type: 'string', pattern: '^[0-9]{1,8}(\\.[0-9]{1,2})?$' } as const;

const payloadSchema = {
  type: 'object',
  required: ['id', 'type', 'data'],
  properties: {
    id: { ...text(200), description: "The provider's event id; a repeated id is acknowledged and not applied again" },
    type: { type: 'string', enum: webhookTypes },
    provider: text(50),
    created: { type: 'integer' },
    data: {
      type: 'object',
      required: ['pubkey'],
      properties: {
        pubkey: { ...hex64, description: "The user's Nostr pubkey (the extension gives it to the provider)" },
        subscription_id: text(100),
        plan: text(50),
        billing_cycle: { type: 'string', enum: ['monthly', 'yearly', 'lifetime'] },
        amount,
        currency: { type: 'string', pattern: '^[A-Z]{3}$' },
        current_period_start: { type: 'string', format: 'date-time' },
        current_period_end: { type: 'string', format: 'date-time' },
        ends_at: { type: 'string', format: 'date-time' },
        payment_id: text(100),
        customer_id: text(100),
        payment_method: text(50),
        last_four: { type: 'string', pattern: '^[0-9]{4}$' },
        failure_reason: text(1000),
        fee: amount,
        net_amount: amount,
        invoice_url: text(2048),
        receipt_url: text(2048),
      },
    },
  },
} as const;

export function registerWebhookRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { payments } = deps;
  const secret = deps.config.paymentWebhookSecret;

  async function requireSignature(req: FastifyRequest): Promise<void> {
    if (!secret) throw apiError('webhook_not_configured');
    const header = req.headers[SIGNATURE_HEADER];
    const check = verifyWebhookSignature(
      Array.isArray(header) ? header[0] : header,
      req.rawBody ?? Buffer.alloc(0),
      secret,
      deps.now(),
    );
    if (!check.ok)
      throw apiError('webhook_signature_invalid', check.reason, { field: SIGNATURE_HEADER, location: 'headers' });
  }

  http.post<{ Body: WebhookPayload }>(
    '/v1/webhooks/payments',
    {
      preValidation: requireSignature,
      schema: {
        tags: ['payments'],
        summary: 'Payment-provider events (HMAC-SHA256 signed)',
        description:
          `Header \`${SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with PAYMENT_WEBHOOK_SECRET>\`; ` +
          `t must be within ${WEBHOOK_TOLERANCE_SECONDS} s of the server clock. Idempotent by \`id\`.`,
        headers: {
          type: 'object',
          properties: { [SIGNATURE_HEADER]: { type: 'string', description: 't=<unix seconds>,v1=<hex HMAC-SHA256>' } },
        },
        body: payloadSchema,
        response: {
          200: {
            type: 'object',
            required: ['received', 'duplicate', 'applied'],
            properties: { received: { type: 'boolean' }, duplicate: { type: 'boolean' }, applied: { type: 'string' } },
          },
          '4xx': { $ref: 'Error#' },
          '5xx': { $ref: 'Error#' },
        },
      },
    },
    async (req) => {
      const outcome = await payments.apply(req.body);
      if (!outcome.ok)
        throw apiError('webhook_payload_invalid', outcome.message, { field: outcome.field, location: 'body' });
      return { received: true, duplicate: outcome.duplicate, applied: outcome.applied };
    },
  );
}
