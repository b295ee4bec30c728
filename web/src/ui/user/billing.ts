// Subscription and payments: the current plan and subscription, receipts and invoices, and the plans with a
// button for each payment provider the service has configured for them (none when the API lists none).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { dateTime, limitText, money } from '../../lib/format.js';
import type { Billing, Payment, Plan, Provider } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Card, ErrorNote, Loading, useAction, useLoad } from '../common.js';
import { Table } from '../table.js';

const providerNames: Record<string, string> = { stripe: 'card (Stripe)', extensionpay: 'ExtensionPay' };
const providerName = (p: Provider) => providerNames[p] ?? p;

/** The body of POST /v1/subscription/checkout (Stripe Checkout). */
const checkoutBody = (plan: string, billingCycle: 'monthly' | 'yearly') => ({
  plan,
  billing_cycle: billingCycle,
});

/** Opens a provider's page beside this one (an extension popup would close under a redirect), cut off from this page. */
function openProviderPage(url: string): void {
  const w = window.open(url, '_blank');
  if (!w) return location.assign(url);
  try {
    w.opener = null;
  } catch {
    // already navigated cross-origin: its opener is out of its reach anyway (COOP same-origin on this page)
  }
}

function paymentCells(p: Payment, tz: string) {
  return [
    dateTime(p.created_at, tz),
    money(p.amount, p.currency),
    p.status,
    p.payment_provider ?? '—',
    html`${p.receipt_url ? html`<a href=${p.receipt_url} target="_blank" rel="noopener noreferrer">Receipt</a> ` : null}
      ${p.invoice_url ? html`<a href=${p.invoice_url} target="_blank" rel="noopener noreferrer">Invoice</a>` : null}
      ${!p.receipt_url && !p.invoice_url ? '—' : null}`,
  ];
}

function PlanOffer({ api, plan, current }: { api: PageProps['api']; plan: Plan; current: boolean }): VNode {
  const cycles = plan.checkout_cycles ?? (plan.price_yearly ? ['monthly', 'yearly'] : ['monthly']);
  const [cycle, setCycle] = useState<'monthly' | 'yearly'>(cycles[0] ?? 'monthly');
  const pay = useAction();
  const providers = plan.providers ?? [];
  const stripe = providers.includes('stripe') && cycles.length > 0;
  const checkout = () =>
    pay.run(async () => {
      const { url } = await api.call<{ url: string }>(
        'POST',
        '/v1/subscription/checkout',
        checkoutBody(plan.code, cycle),
      );
      openProviderPage(url);
    });
  return html`<li class="plan" data-plan=${plan.code}>
    <p><strong>${plan.name}</strong>${current ? html` <span class="tag">your plan</span>` : null}</p>
    <p class="muted small">
      ${limitText(plan.daily_post_limit)} posts a day${plan.custom_relays_allowed ? ' · your own relays' : ''}${plan.analytics_enabled ? ' · analytics' : ''}
    </p>
    <p>${money(plan.price_monthly, plan.currency)} a month${plan.price_yearly ? ` · ${money(plan.price_yearly, plan.currency)} a year` : ''}</p>
    ${
      !current && stripe
        ? html`<fieldset class="pay">
          <legend class="sr-only">Buy ${plan.name}</legend>
          ${
            cycles.length > 1
              ? html`<label>Billing <select value=${cycle} onChange=${(e: Event) => setCycle((e.currentTarget as HTMLSelectElement).value as 'monthly' | 'yearly')}>
                ${cycles.map((c) => html`<option value=${c}>${c}</option>`)}
              </select></label>`
              : null
          }
          <button type="button" class="primary" disabled=${pay.busy} onClick=${checkout} data-provider="stripe">Pay with ${providerName('stripe')}</button>
        </fieldset>`
        : null
    }
    ${!current && providers.includes('extensionpay') ? html`<p class="muted small" data-provider-note="extensionpay">Or buy it in the NostrX extension (ExtensionPay).</p>` : null}
    <${ErrorNote} error=${pay.error} />
  </li>`;
}

function ManageBilling({ api }: Pick<PageProps, 'api'>): VNode {
  const act = useAction();
  const open = () =>
    act.run(async () => {
      const { url } = await api.call<{ url: string }>('POST', '/v1/subscription/portal');
      openProviderPage(url);
    });
  return html`<button type="button" onClick=${open} disabled=${act.busy}>Manage billing (card, cancel, invoices)</button><${ErrorNote} error=${act.error} />`;
}

export function BillingPage({ api, me }: PageProps): VNode {
  const billing = useLoad(() => api.get<Billing>('/v1/subscription'), []);
  const plans = useLoad(() => api.get<{ plans: Plan[] }>('/v1/plans'), []);
  const b = billing.data;
  const s = b?.subscription;
  return html`<div class="page">
    <${Card} title="Subscription" id="subscription-title">
      ${!b ? html`<${Loading} what="your subscription" />` : null}
      ${b && !s ? html`<p>You are on the <strong>${b.plan.name}</strong> plan, with no paid subscription.</p>` : null}
      ${
        s
          ? html`<p><strong>${b?.plan.name}</strong> · ${s.status} · ${s.billing_cycle} · ${money(s.amount, s.currency)}</p>
            <p class="muted">${s.current_period_end ? `Current period ends ${dateTime(s.current_period_end, me.timezone)}` : 'No end date'}${s.payment_provider ? ` · paid with ${providerName(s.payment_provider)}` : ''}</p>
            ${s.payment_provider === 'stripe' ? html`<${ManageBilling} api=${api} />` : null}`
          : null
      }
      <${ErrorNote} error=${billing.error} />
    <//>
    <${Card} title="Payments" id="payments-title">
      ${b && b.payments.length === 0 ? html`<p class="muted">No payments yet.</p>` : null}
      ${
        b && b.payments.length > 0
          ? html`<${Table}
            caption="Your payments, newest first"
            columns=${['Date', 'Amount', 'Status', 'Provider', 'Documents']}
            rows=${b.payments.map((p) => ({ key: p.id, cells: paymentCells(p, me.timezone) }))}
          />`
          : null
      }
    <//>
    <${Card} title="Plans" id="plans-title">
      ${plans.data ? html`<ul class="plans">${plans.data.plans.map((p) => html`<${PlanOffer} key=${p.code} api=${api} plan=${p} current=${p.code === b?.plan.code} />`)}</ul>` : html`<${Loading} what="the plans" />`}
      <${ErrorNote} error=${plans.error} />
    <//>
  </div>`;
}
