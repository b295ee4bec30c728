// The operator's reports over a date range (whole UTC days): revenue per day, engagement per plan and forwarding
// per upstream relay, each as a chart with its numbers in a table (GET /v1/admin/reports/*).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { money, percent100 } from '../../lib/format.js';
import type { PageProps } from '../app.js';
import { Chart } from '../chart.js';
import { Card, ErrorNote, Loading, useLoad, valueOf } from '../common.js';
import { Table } from '../table.js';

interface Report<R> {
  from: string;
  to: string;
  rows: R[];
}
interface RevenueRow {
  date: string;
  plan: string;
  currency: string;
  payments: number;
  revenue: string;
}
interface EngagementRow {
  plan: string;
  active_users: number;
  user_days: number;
  total_posts: number;
  successful_posts: number;
  success_rate: number | null;
}
interface RelayRow {
  relay_url: string;
  publishes: number;
  published: number;
  rejected: number;
  failed: number;
  timed_out: number;
  success_rate: number | null;
  avg_publish_time_ms: number | null;
}

const DAY = 86_400_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const hostOf = (u: string) => {
  try {
    return new URL(u).host;
  } catch {
    return u;
  }
};

function days(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`) && out.length < 400; t += DAY)
    out.push(isoDay(t));
  return out;
}

function Revenue({ r }: { r: Report<RevenueRow> }): VNode {
  const dates = days(r.from, r.to);
  const currencies = [...new Set(r.rows.map((x) => x.currency))];
  const series = currencies.map((c) => ({
    label: c,
    values: dates.map((d) =>
      r.rows.filter((x) => x.date === d && x.currency === c).reduce((n, x) => n + Number(x.revenue), 0),
    ),
  }));
  const total =
    currencies.map((c, i) => money(String(series[i]?.values.reduce((a, b) => a + (b ?? 0), 0) ?? 0), c)).join(', ') ||
    'nothing';
  return html`
    ${
      currencies.length > 0
        ? html`<${Chart} id="revenue-chart" caption="Revenue per day" summary=${`Revenue ${r.from} to ${r.to}: ${total}`} kind="bars" xKind="utc-date" x=${dates.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000)} series=${series} />`
        : html`<p class="muted">No payments in this range.</p>`
    }
    ${
      r.rows.length > 0
        ? html`<${Table}
          caption="Revenue by day and plan"
          columns=${['Date', 'Plan', 'Payments', 'Revenue']}
          rows=${r.rows.map((x) => ({ key: `${x.date}|${x.plan}|${x.currency}`, cells: [x.date, x.plan, x.payments, money(x.revenue, x.currency)] }))}
        />`
        : null
    }`;
}

function Engagement({ r }: { r: Report<EngagementRow> }): VNode {
  if (r.rows.length === 0) return html`<p class="muted">No activity in this range.</p>`;
  return html`<${Chart}
      id="engagement-chart"
      caption="Posts per plan"
      summary=${r.rows.map((x) => `${x.plan}: ${x.total_posts} posts by ${x.active_users} users`).join('; ')}
      kind="bars"
      xKind="category"
      categories=${r.rows.map((x) => x.plan)}
      x=${r.rows.map((_, i) => i)}
      series=${[{ label: 'Posts', values: r.rows.map((x) => x.total_posts) }]}
    />
    <${Table}
      caption="Engagement by plan"
      columns=${['Plan', 'Active users', 'Posts', 'Forwarded']}
      rows=${r.rows.map((x) => ({ key: x.plan, cells: [x.plan, x.active_users, x.total_posts, percent100(x.success_rate)] }))}
    />`;
}

function Relays({ r }: { r: Report<RelayRow> }): VNode {
  if (r.rows.length === 0) return html`<p class="muted">Nothing forwarded in this range.</p>`;
  return html`<${Chart}
      id="relay-report-chart"
      caption="Publishes per relay"
      summary=${r.rows.map((x) => `${hostOf(x.relay_url)}: ${x.published} of ${x.publishes} published`).join('; ')}
      kind="bars"
      xKind="category"
      categories=${r.rows.map((x) => hostOf(x.relay_url))}
      x=${r.rows.map((_, i) => i)}
      series=${[{ label: 'Publishes', values: r.rows.map((x) => x.publishes) }]}
    />
    <${Table}
      caption="Forwarding per relay"
      columns=${['Relay', 'Publishes', 'Success', 'Refused', 'Failed', 'Avg time']}
      rows=${r.rows.map((x) => ({
        key: x.relay_url,
        cells: [
          html`<span class="relay-url">${x.relay_url}</span>`,
          x.publishes,
          percent100(x.success_rate),
          x.rejected,
          x.failed + x.timed_out,
          x.avg_publish_time_ms === null ? '—' : `${Math.round(x.avg_publish_time_ms)} ms`,
        ],
      }))}
    />`;
}

export function ReportsPage({ api }: PageProps): VNode {
  const today = isoDay(Date.now());
  const [range, setRange] = useState({ from: isoDay(Date.now() - 29 * DAY), to: today });
  const [draft, setDraft] = useState(range);
  const q = `?from=${range.from}&to=${range.to}`;
  const revenue = useLoad(() => api.signed<Report<RevenueRow>>('GET', `/v1/admin/reports/revenue${q}`), [q]);
  const engagement = useLoad(() => api.signed<Report<EngagementRow>>('GET', `/v1/admin/reports/engagement${q}`), [q]);
  const relays = useLoad(() => api.signed<Report<RelayRow>>('GET', `/v1/admin/reports/relays${q}`), [q]);
  const apply = (e: Event) => {
    e.preventDefault();
    setRange(draft);
  };
  return html`<div class="page">
    <form class="inline-form" onSubmit=${apply} aria-label="Date range">
      <label>From <input type="date" required value=${draft.from} max=${draft.to} onInput=${(e: Event) => setDraft((d) => ({ ...d, from: valueOf(e) }))} /></label>
      <label>To <input type="date" required value=${draft.to} max=${today} onInput=${(e: Event) => setDraft((d) => ({ ...d, to: valueOf(e) }))} /></label>
      <button type="submit" class="primary">Show</button>
    </form>
    <${Card} title="Revenue" id="revenue-title">${revenue.data ? html`<${Revenue} r=${revenue.data} />` : html`<${Loading} what="revenue" />`}<${ErrorNote} error=${revenue.error} /><//>
    <${Card} title="Engagement" id="engagement-title">${engagement.data ? html`<${Engagement} r=${engagement.data} />` : html`<${Loading} what="engagement" />`}<${ErrorNote} error=${engagement.error} /><//>
    <${Card} title="Relay performance" id="relay-report-title">${relays.data ? html`<${Relays} r=${relays.data} />` : html`<${Loading} what="relay performance" />`}<${ErrorNote} error=${relays.error} /><//>
  </div>`;
}
