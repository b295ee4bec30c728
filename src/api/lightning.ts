// Paying a plan period in sats (core/billing/lightning.ts): an invoice from the operator's Lightning wallet over Nostr
// Wallet Connect, and its state, which the client can wait on. The payment is confirmed by the wallet itself, never
// by the client. GET /v1/subscription shows the period it bought.
import type { FastifyInstance } from 'fastify';
import { MAX_WAIT_SECONDS, type InvoiceView } from '../core/billing/index.js';
import { callerOf } from './auth.js';
import { billingApiError } from './billing.js';
import { apiError } from './errors.js';
import type { ApiServices } from './services.js';
import { planPurchaseBody, type PlanPurchase } from './schemas.js';

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;

const invoiceSchema = {
  type: 'object',
  required: ['payment_hash', 'invoice', 'amount_sats', 'plan', 'billing_cycle', 'status', 'created_at', 'expires_at'],
  properties: {
    payment_hash: { type: 'string', description: 'The invoice id: GET /v1/subscription/lightning/{payment_hash}' },
    invoice: { type: 'string', description: 'The BOLT11 payment request to pay from any Lightning wallet' },
    amount_sats: { type: 'integer' },
    plan: { type: 'string' },
    billing_cycle: { type: 'string', enum: ['monthly', 'yearly'] },
    status: {
      type: 'string',
      enum: ['pending', 'paid', 'expired'],
      description: 'expired: not paid in time (a payment the wallet still settles later is credited)',
    },
    created_at: dateTime,
    expires_at: dateTime,
    paid_at: nullableDateTime,
    period_start: {
      ...nullableDateTime,
      description: 'The period the payment bought: it starts now, or when the period you already have ends',
    },
    period_end: nullableDateTime,
  },
} as const;

function invoiceView(i: InvoiceView) {
  return {
    payment_hash: i.paymentHash,
    invoice: i.invoice,
    amount_sats: i.amountSats,
    plan: i.plan,
    billing_cycle: i.billingCycle,
    status: i.status,
    created_at: i.createdAt,
    expires_at: i.expiresAt,
    paid_at: i.paidAt,
    period_start: i.periodStart,
    period_end: i.periodEnd,
  };
}

export function registerLightningRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { lightning } = deps.billing;

  http.post<{ Body: PlanPurchase }>(
    '/v1/subscription/lightning',
    deps.access('user', {
      tags: ['payments'],
      summary: 'Buy one period of a plan in sats: answers a Lightning invoice (BOLT11) to pay from any wallet',
      description:
        "The invoice comes from the operator's wallet (Nostr Wallet Connect); the period applies when that wallet reports the payment. " +
        'A period does not renew; one bought while another runs starts when it ends. ' +
        '400 for a plan or cycle not sold in sats (LIGHTNING_PRICES); 502 when the wallet cannot be reached or refuses (nothing is stored); 503 when NWC_URL is not set.',
      body: planPurchaseBody,
      response: { 201: invoiceSchema },
    }),
    async (req, reply) => {
      const caller = callerOf(req);
      try {
        const made = await lightning.createInvoice(
          { id: caller.user.id, pubkey: caller.user.pubkey },
          req.body.plan,
          req.body.billing_cycle,
        );
        return reply.code(201).send(invoiceView(made));
      } catch (err) {
        throw billingApiError(err);
      }
    },
  );

  http.get<{ Params: { payment_hash: string }; Querystring: { wait?: number } }>(
    '/v1/subscription/lightning/:payment_hash',
    deps.access('user', {
      tags: ['payments'],
      summary: 'One of your Lightning invoices: pending, paid (with the period it bought) or expired',
      description: `With ?wait=N (at most ${MAX_WAIT_SECONDS}) the answer comes when the invoice is no longer pending, or after N seconds.`,
      params: {
        type: 'object',
        required: ['payment_hash'],
        properties: { payment_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
      },
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { wait: { type: 'integer', minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0 } },
      },
      response: { 200: invoiceSchema },
    }),
    async (req) => {
      const caller = callerOf(req);
      const found = await lightning.invoice(caller.user.id, req.params.payment_hash, (req.query.wait ?? 0) * 1000);
      if (!found) throw apiError('invoice_not_found');
      return invoiceView(found);
    },
  );
}
