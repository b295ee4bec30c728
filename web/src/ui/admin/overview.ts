// The operator's live overview, refreshed every few seconds from GET /v1/admin/overview (computed by the service
// from its own metrics): admissions per minute by outcome and refusal reason, connections, admission p99, the
// outbox backlog, and each upstream relay's success rate, latency and circuit breaker.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { dateTime, percent100, relative, time } from '../../lib/format.js';
import type { Overview, RelayHealth } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Chart, type ChartSeries } from '../chart.js';
import { Card, ErrorNote, Loading, checkedOf } from '../common.js';
import { Table } from '../table.js';

const REFRESH_MS = 5000;

function Tile({ label, value, note }: { label: string; value: string; note?: string }): VNode {
  return html`<div class="tile"><span class="tile-label">${label}</span><span class="tile-value">${value}</span>${note ? html`<span class="muted small">${note}</span>` : null}</div>`;
}

function breakerText(r: RelayHealth): string {
  if (r.breaker === null) return '—';
  if (r.breaker === 'open') return `open (paused${r.paused_until ? ` until ${time(r.paused_until)}` : ''})`;
  if (r.breaker === 'half-open') return 'half-open (probing)';
  return 'closed';
}

const seconds = (s: number) =>
  s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;

function PerMinute({ o }: { o: Overview }): VNode {
  const m = o.per_minute;
  const series: ChartSeries[] = [
    { label: 'accepted', values: m.accepted, color: '#15803d' },
    { label: 'duplicate', values: m.duplicate, color: '#4b5563' },
    ...Object.entries(m.refused).map(([reason, values], i) => ({
      label: `refused: ${reason}`,
      values,
      color: ['#b91c1c', '#b45309', '#7c3aed', '#be185d', '#0e7490'][i % 5],
    })),
  ];
  const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
  const refused = Object.values(m.refused).reduce((n, v) => n + sum(v), 0);
  return html`<${Chart}
    id="events-chart"
    caption="Events per minute, last hour"
    summary=${`Last hour: ${sum(m.accepted)} accepted, ${sum(m.duplicate)} duplicates, ${refused} refused`}
    x=${m.minutes}
    series=${series}
    height=${220}
  />`;
}

export function OverviewPage({ api }: PageProps): VNode {
  const [o, setO] = useState<Overview | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [live, setLive] = useState(true);

  // One request at a time: the next is scheduled when the last has answered, and not while the tab is hidden.
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      if (!document.hidden) {
        try {
          setO(await api.signed<Overview>('GET', '/v1/admin/overview'));
          setError(undefined);
        } catch (err) {
          setError(err);
        }
      }
      if (!stopped) timer = setTimeout(() => void tick(), REFRESH_MS);
    };
    if (live) void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [api, live]);

  return html`<div class="page">
    <${Card}
      title="Live overview"
      id="overview-title"
      actions=${html`<label class="check"><input type="checkbox" checked=${live} onChange=${(e: Event) => setLive(checkedOf(e))} /> Refresh every ${REFRESH_MS / 1000} s</label>`}
    >
      ${
        o
          ? html`<p class="muted small" role="status" aria-live="off">This process, at ${dateTime(o.at)}.</p>
            <div class="tiles">
              <${Tile} label="Connections" value=${String(o.connections)} note=${`${o.subscriptions} subscriptions`} />
              <${Tile} label="Admission p99" value=${o.admission.p99_ms === null ? '—' : `≤ ${o.admission.p99_ms} ms`} note=${`${o.admission.count} events, last ${o.admission.window_seconds / 60} min`} />
              <${Tile} label="Outbox" value=${String(o.outbox.depth)} note=${o.outbox.depth > 0 ? `oldest ${seconds(o.outbox.oldest_seconds)}` : 'empty'} />
            </div>
            <${PerMinute} o=${o} />`
          : html`<${Loading} what="the overview" />`
      }
      <${ErrorNote} error=${error} />
    <//>
    <${Card} title="Upstream relays" id="relays-health-title">
      ${o && o.relays.rows.length === 0 ? html`<p class="muted">No upstream relays configured (UPSTREAM_RELAYS).</p>` : null}
      ${
        o && o.relays.rows.length > 0
          ? html`<${Table}
            className="relay-health"
            caption=${`Forwarding over the last ${o.relays.window_seconds / 60} minutes`}
            columns=${['Relay', 'Success', 'Latency', 'Breaker', 'Attempts']}
            rows=${o.relays.rows.map((r) => ({
              key: r.url,
              attrs: { 'data-relay': r.url },
              cells: [
                html`<span class="relay-url">${r.url === 'custom' ? "users' own relays" : r.url}</span>`,
                percent100(r.success_rate),
                r.avg_latency_ms === null ? '—' : `${r.avg_latency_ms} ms`,
                html`<span data-breaker=${r.breaker ?? ''}>${breakerText(r)}${r.paused_until && r.breaker === 'open' ? html`<span class="sr-only"> ${relative(r.paused_until)}</span>` : null}</span>`,
                Object.entries(r.attempts)
                  .map(([k, n]) => `${k} ${n}`)
                  .join(', ') || '—',
              ],
            }))}
          />
          <p class="muted small">Over the last ${o.relays.window_seconds / 60} minutes.</p>`
          : null
      }
    <//>
  </div>`;
}
