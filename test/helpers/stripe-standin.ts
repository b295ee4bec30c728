// A stand-in for the Stripe API on 127.0.0.1, for the official `stripe` package pointed at it (STRIPE_API_BASE). It
// answers the calls the service makes with the shapes Stripe documents for API version 2026-11-18: Checkout Sessions
// and Billing Portal sessions (POST, form-encoded), subscriptions.retrieve, invoicePayments.list (filtered by invoice
// or by payment intent, with the expansions asked for), customers.retrieve; unknown ids get Stripe's error object.
// Tests set the subscriptions and invoice payments Stripe "has", sign events with Stripe.webhooks, and can make it
// refuse connections (Stripe unreachable).
import type { IncomingMessage, ServerResponse } from 'node:http';
import Stripe from 'stripe';
import { listenLoopback } from './loopback-server.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

interface StripeCall {
  readonly method: string;
  readonly path: string;
  readonly params: Record<string, string>;
}

export interface StripeStandIn {
  readonly url: string;
  readonly calls: StripeCall[];
  readonly subscriptions: Map<string, Record<string, unknown>>;
  /** Invoice payments (objects with `invoice` and `payment`), whose payment intents may carry a latest_charge. */
  readonly invoicePayments: Record<string, unknown>[];
  /** true: every connection is dropped before an answer (Stripe unreachable). */
  refuse: boolean;
  close(): Promise<void>;
}

let seq = 0;
export const stripeId = (prefix: string) => `${prefix}_test${Date.now().toString(36)}${(++seq).toString(36)}`;
const seconds = (ms: number) => Math.floor(ms / 1000);

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': stripeId('req') });
  res.end(JSON.stringify(body));
}

function missing(res: ServerResponse, what: string, id: string): void {
  send(res, 404, {
    error: {
      type: 'invalid_request_error',
      code: 'resource_missing',
      message: `No such ${what}: '${id}'`,
      param: 'id',
    },
  });
}

async function readForm(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

export async function startStripeStandIn(t: Teardown): Promise<StripeStandIn> {
  const calls: StripeCall[] = [];
  const subscriptions = new Map<string, Record<string, unknown>>();
  const invoicePayments: Record<string, unknown>[] = [];
  const state = { refuse: false };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (state.refuse) {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://stripe.standin');
    const params = req.method === 'POST' ? await readForm(req) : Object.fromEntries(url.searchParams);
    calls.push({ method: req.method ?? 'GET', path: url.pathname, params });
    const now = seconds(Date.now());

    if (req.method === 'POST' && url.pathname === '/v1/checkout/sessions') {
      const id = stripeId('cs');
      return send(res, 200, {
        id,
        object: 'checkout.session',
        mode: params.mode,
        status: 'open',
        url: `https://checkout.stripe.com/c/pay/${id}`,
        client_reference_id: params.client_reference_id ?? null,
        customer: params.customer ?? null,
        subscription: null,
        success_url: params.success_url,
        cancel_url: params.cancel_url,
        metadata: {},
        created: now,
        livemode: false,
      });
    }
    if (req.method === 'POST' && url.pathname === '/v1/billing_portal/sessions') {
      if (!params.customer) return missing(res, 'customer', '');
      const id = stripeId('bps');
      return send(res, 200, {
        id,
        object: 'billing_portal.session',
        customer: params.customer,
        return_url: params.return_url,
        url: `https://billing.stripe.com/p/session/${id}`,
        created: now,
        livemode: false,
      });
    }
    const sub = /^\/v1\/subscriptions\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && sub) {
      const found = subscriptions.get(sub[1] ?? '');
      return found ? send(res, 200, found) : missing(res, 'subscription', sub[1] ?? '');
    }
    const customer = /^\/v1\/customers\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && customer)
      return send(res, 200, { id: customer[1], object: 'customer', created: now, livemode: false, metadata: {} });
    if (req.method === 'GET' && url.pathname === '/v1/invoice_payments') {
      const byInvoice = params.invoice;
      const byIntent = params['payment[payment_intent]'];
      const expand = Object.entries(params).some(
        ([k, v]) => k.startsWith('expand') && v === 'data.payment.payment_intent.latest_charge',
      );
      const data = invoicePayments
        .filter((p) => (byInvoice ? p.invoice === byInvoice : true))
        .filter((p) => (byIntent ? intentId(p) === byIntent : true))
        .map((p) => (expand ? p : { ...p, payment: { ...(p.payment as object), payment_intent: intentId(p) } }));
      return send(res, 200, { object: 'list', data, has_more: false, url: '/v1/invoice_payments' });
    }
    send(res, 404, {
      error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${url.pathname}).` },
    });
  }

  const server = await listenLoopback(t, (req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { error: { type: 'api_error', message: String(err) } }));
  });
  const standIn: StripeStandIn = {
    url: server.url,
    calls,
    subscriptions,
    invoicePayments,
    get refuse() {
      return state.refuse;
    },
    set refuse(v: boolean) {
      state.refuse = v;
    },
    close: () => server.close(),
  };
  return standIn;
}

function intentId(p: Record<string, unknown>): string | undefined {
  const intent = (p.payment as { payment_intent?: string | { id: string } } | undefined)?.payment_intent;
  return typeof intent === 'string' ? intent : intent?.id;
}

// ---- Stripe objects, as the API (2026-11-18) shows them ----

export interface SubscriptionShape {
  id?: string;
  customer: string;
  price: string;
  amount: number;
  status: string;
  userId?: string;
  periodStart?: number;
  periodEnd?: number;
  cancelAtPeriodEnd?: boolean;
  canceledAt?: number | null;
  endedAt?: number | null;
  interval?: 'month' | 'year';
}

export function subscriptionObject(s: SubscriptionShape): Record<string, unknown> {
  const id = s.id ?? stripeId('sub');
  const start = s.periodStart ?? seconds(Date.now() - 86_400_000);
  const end = s.periodEnd ?? start + 30 * 86_400;
  return {
    id,
    object: 'subscription',
    status: s.status,
    customer: s.customer,
    currency: 'usd',
    created: start,
    start_date: start,
    cancel_at_period_end: s.cancelAtPeriodEnd ?? false,
    cancel_at: s.cancelAtPeriodEnd ? end : null,
    canceled_at: s.canceledAt ?? null,
    ended_at: s.endedAt ?? null,
    metadata: s.userId ? { nostrx_user_id: s.userId } : {},
    latest_invoice: null,
    trial_end: null,
    livemode: false,
    items: {
      object: 'list',
      has_more: false,
      url: `/v1/subscription_items?subscription=${id}`,
      data: [
        {
          id: stripeId('si'),
          object: 'subscription_item',
          current_period_start: start,
          current_period_end: end,
          quantity: 1,
          subscription: id,
          price: {
            id: s.price,
            object: 'price',
            currency: 'usd',
            unit_amount: s.amount,
            recurring: { interval: s.interval ?? 'month', interval_count: 1 },
            type: 'recurring',
          },
        },
      ],
    },
  };
}

export interface InvoiceShape {
  id?: string;
  customer: string;
  subscription: string;
  amount: number;
  paid: boolean;
}

export function invoiceObject(i: InvoiceShape): Record<string, unknown> {
  const id = i.id ?? stripeId('in');
  return {
    id,
    object: 'invoice',
    customer: i.customer,
    currency: 'usd',
    amount_due: i.amount,
    amount_paid: i.paid ? i.amount : 0,
    total: i.amount,
    status: i.paid ? 'paid' : 'open',
    billing_reason: 'subscription_cycle',
    hosted_invoice_url: `https://invoice.stripe.com/i/acct_test/${id}`,
    invoice_pdf: `https://pay.stripe.com/invoice/acct_test/${id}/pdf`,
    parent: {
      type: 'subscription_details',
      quote_details: null,
      subscription_details: { subscription: i.subscription, metadata: {} },
    },
    status_transitions: { paid_at: i.paid ? seconds(Date.now()) : null, finalized_at: seconds(Date.now()) },
    created: seconds(Date.now()),
    livemode: false,
  };
}

export function chargeObject(c: {
  id?: string;
  customer: string;
  intent: string;
  amount: number;
  refunded?: boolean;
  last4?: string;
  type?: string;
  failure?: string;
}): Record<string, unknown> {
  const id = c.id ?? stripeId('ch');
  const type = c.type ?? 'card';
  return {
    id,
    object: 'charge',
    amount: c.amount,
    amount_refunded: c.refunded ? c.amount : 0,
    refunded: c.refunded ?? false,
    currency: 'usd',
    customer: c.customer,
    payment_intent: c.intent,
    status: c.failure ? 'failed' : 'succeeded',
    failure_message: c.failure ?? null,
    receipt_url: `https://pay.stripe.com/receipts/payment/${id}`,
    payment_method_details:
      type === 'card'
        ? { type, card: { brand: 'visa', last4: c.last4 ?? '4242', exp_month: 12, exp_year: 2040 } }
        : { type },
    created: seconds(Date.now()),
    livemode: false,
  };
}

/** An invoice payment whose payment intent's latest charge is `charge` (what invoicePayments.list expands). */
export function invoicePaymentObject(
  invoice: string,
  intent: string,
  charge: Record<string, unknown>,
  failure?: string,
): Record<string, unknown> {
  return {
    id: stripeId('inpay'),
    object: 'invoice_payment',
    invoice,
    is_default: true,
    status: failure ? 'open' : 'paid',
    amount_paid: failure ? null : charge.amount,
    payment: {
      type: 'payment_intent',
      payment_intent: {
        id: intent,
        object: 'payment_intent',
        latest_charge: charge,
        last_payment_error: failure ? { message: failure, type: 'card_error' } : null,
      },
    },
    created: seconds(Date.now()),
    livemode: false,
  };
}

/** A webhook event body, as Stripe posts it. */
export function eventBody(type: string, object: Record<string, unknown>, id = stripeId('evt')): string {
  return JSON.stringify({
    id,
    object: 'event',
    api_version: '2026-11-18.endive',
    type,
    created: seconds(Date.now()),
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
  });
}

/** The Stripe-Signature header of `payload`, as Stripe computes it (at `timestamp`, default now). */
export function signStripe(payload: string, secret: string, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(timestamp !== undefined ? { timestamp } : {}),
  });
}
