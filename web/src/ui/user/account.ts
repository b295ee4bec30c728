// The account page: the plan, today's quota (used of limit, and when it resets in the user's timezone), this
// month's where the plan has a monthly limit, and the posts per day of the last 30 days (plans with analytics).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { dateTime, limitText, localDate, relative, time } from '../../lib/format.js';
import type { Billing, Plan, Quota, QuotaPeriod, Stats } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Chart } from '../chart.js';
import { Card, ErrorNote, Loading, useLoad } from '../common.js';

const REFRESH_MS = 30_000;

function QuotaLine({
  period,
  label,
  tz,
  plan,
}: {
  period: QuotaPeriod;
  label: 'today' | 'this month';
  tz: string;
  plan: string;
}): VNode {
  const unlimited = period.limit < 0;
  const full = !unlimited && period.used >= period.limit;
  const resets = label === 'today' ? `${time(period.resets_at, tz)} (${tz})` : dateTime(period.resets_at, tz);
  return html`<div class="quota" data-period=${label}>
    <p class="big">${unlimited ? html`${period.used} ${label} <span class="muted">(unlimited)</span>` : `${period.used} of ${period.limit} ${label}`}</p>
    ${unlimited ? null : html`<meter min="0" max=${period.limit} low=${period.limit * 0.6} high=${period.limit * 0.9} optimum="0" value=${period.used} aria-label=${`Posts used ${label}`}>${period.used} of ${period.limit}</meter>`}
    ${
      full
        ? html`<p class="warn" role="status">
          Limit reached: ${limitText(period.limit)} posts ${label === 'today' ? 'a day' : 'a month'} on the ${plan} plan. The relay refuses new
          posts until the reset at ${resets}, ${relative(period.resets_at)}.
        </p>`
        : html`<p class="muted">Resets at ${resets}, ${relative(period.resets_at)}.</p>`
    }
  </div>`;
}

function PostsChart({ api, plan, tz, tick }: Pick<PageProps, 'api'> & { plan: Plan; tz: string; tick: number }): VNode {
  // The stats are kept per day of the user's timezone, so the range ends on their today (not the UTC one).
  const range = `from=${localDate(tz, 29)}&to=${localDate(tz)}`;
  const stats = useLoad(
    () => (plan.analytics_enabled ? api.get<Stats>(`/v1/stats?${range}`) : Promise.resolve(undefined)),
    [plan.code, range, tick],
  );
  if (!plan.analytics_enabled) {
    return html`<p class="muted">A chart of your posts per day comes with plans that include analytics (see Billing).</p>`;
  }
  if (!stats.data)
    return html`${stats.loading ? html`<${Loading} what="your stats" />` : null}<${ErrorNote} error=${stats.error} />`;
  // The API lists the days with posts; the chart shows every day of the range.
  const { from, to } = stats.data;
  const counts = new Map(stats.data.days.map((d) => [d.date, d.total_posts]));
  const x: number[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) x.push(t / 1000);
  const values = x.map((t) => counts.get(new Date(t * 1000).toISOString().slice(0, 10)) ?? 0);
  const total = values.reduce((n, v) => n + v, 0);
  return html`<${Chart}
    id="posts-chart"
    caption=${`Posts per day, ${from} to ${to}`}
    summary=${`${total} posts in ${x.length} days`}
    kind="bars"
    xKind="utc-date"
    x=${x}
    series=${[{ label: 'Posts', values }]}
  />`;
}

export function AccountPage({ api, me }: PageProps): VNode {
  const [tick, setTick] = useState(0);
  const quota = useLoad(() => api.get<Quota>('/v1/me/quota'), [tick]);
  const billing = useLoad(() => api.get<Billing>('/v1/subscription'), [tick]);
  const refresh = () => setTick((n) => n + 1);

  useEffect(() => {
    const timer = setInterval(() => !document.hidden && setTick((n) => n + 1), REFRESH_MS);
    return () => clearInterval(timer);
  }, []);

  const plan = billing.data?.plan;
  const q = quota.data;
  return html`<div class="page">
    <${Card}
      title="Plan and quota"
      id="quota-title"
      actions=${html`<button type="button" onClick=${refresh} disabled=${quota.loading}>Refresh</button>`}
    >
      ${plan ? html`<p><strong>${plan.name}</strong> plan · ${limitText(plan.daily_post_limit)} posts a day${plan.monthly_post_limit !== null ? `, ${limitText(plan.monthly_post_limit)} a month` : ''}</p>` : null}
      ${
        q
          ? html`<${QuotaLine} period=${q.daily} label="today" tz=${me.timezone} plan=${q.plan} />
            ${q.monthly ? html`<${QuotaLine} period=${q.monthly} label="this month" tz=${me.timezone} plan=${q.plan} />` : null}`
          : html`<${Loading} what="your quota" />`
      }
      <p class="muted small">Your day starts at midnight in ${me.timezone} (change it in Settings).</p>
      <${ErrorNote} error=${quota.error ?? billing.error} />
    <//>
    <${Card} title="Posts per day, last 30 days" id="posts-title">${plan ? html`<${PostsChart} api=${api} plan=${plan} tz=${me.timezone} tick=${tick} />` : null}<//>
  </div>`;
}
