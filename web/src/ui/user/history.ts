// The publish history: the user's events, newest first, each with every upstream relay's outcome: accepted,
// refused with the relay's reason, pending with the next attempt, or failed after the last one.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { dateTime, relative } from '../../lib/format.js';
import type { EventRecord, RelayOutcome } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Card, ErrorNote, Loading, useAction, useLoad } from '../common.js';

interface Page {
  events: EventRecord[];
  next_cursor: string | null;
}

const unfinished = new Set(['pending', 'connecting', 'connected', 'publishing']);

/** The relay's own words for a refusal: its OK message, else our record of the error. */
function refusal(o: RelayOutcome): string {
  const answer: unknown = Array.isArray(o.relay_response) ? (o.relay_response as unknown[])[3] : undefined;
  return (typeof answer === 'string' && answer) || o.error_message || o.error_code || 'no reason given';
}

function Outcome({ o, tz }: { o: RelayOutcome; tz: string }): VNode {
  let badge: string;
  let text: string;
  if (o.status === 'published') {
    badge = 'ok';
    text = `accepted${o.publish_time_ms !== null ? ` in ${o.publish_time_ms} ms` : ''}`;
  } else if (o.status === 'rejected') {
    badge = 'bad';
    text = `refused: ${refusal(o)}`;
  } else if (unfinished.has(o.status)) {
    badge = 'wait';
    const next = o.next_attempt_at
      ? `, next attempt ${dateTime(o.next_attempt_at, tz)} (${relative(o.next_attempt_at)})`
      : '';
    text = `pending${o.attempts > 0 ? ` after ${o.attempts} attempt${o.attempts === 1 ? '' : 's'}` : ''}${next}${o.error_message ? ` · last error: ${o.error_message}` : ''}`;
  } else {
    badge = 'bad';
    text = `${o.status === 'timeout' ? 'timed out' : 'failed'} after ${o.attempts} attempts${o.error_message ? `: ${o.error_message}` : ''}`;
  }
  return html`<li class="outcome" data-status=${o.status}>
    <span class=${`badge ${badge}`}>${badge === 'ok' ? '✓' : badge === 'wait' ? '…' : '✗'}</span>
    <span class="relay-url">${o.relay_url}</span>
    <span class="outcome-text">${text}</span>
  </li>`;
}

function EventItem({ e, tz }: { e: EventRecord; tz: string }): VNode {
  const text = e.event.content.length > 280 ? `${e.event.content.slice(0, 280)}…` : e.event.content;
  return html`<li class="event" data-event-id=${e.id}>
    <p class="event-text">${text || html`<span class="muted">(kind ${e.kind}, no text)</span>`}</p>
    <p class="muted small">
      ${dateTime(e.received_at, tz)} · ${e.status} · ${e.successful_relays} of ${e.total_relays} relays
      ${e.source.tweet_url ? html` · <a href=${e.source.tweet_url} target="_blank" rel="noopener noreferrer">original post</a>` : null}
    </p>
    ${e.relays.length > 0 ? html`<ul class="outcomes" aria-label="Upstream relays">${e.relays.map((o) => html`<${Outcome} o=${o} tz=${tz} />`)}</ul>` : html`<p class="muted small">Not forwarded to any relay.</p>`}
  </li>`;
}

export function HistoryPage({ api, me }: PageProps): VNode {
  const first = useLoad(() => api.get<Page>('/v1/events?limit=20'), []);
  const [more, setMore] = useState<Page[]>([]);
  const next = useAction();
  const pages = first.data ? [first.data, ...more] : [];
  const cursor = pages.at(-1)?.next_cursor ?? null;
  const events = pages.flatMap((p) => p.events);

  const loadMore = () =>
    next.run(async () => {
      if (!cursor) return;
      const page = await api.get<Page>(`/v1/events?limit=20&cursor=${encodeURIComponent(cursor)}`);
      setMore((m) => [...m, page]);
    });

  return html`<div class="page">
    <${Card}
      title="Publish history"
      id="history-title"
      actions=${html`<button type="button" onClick=${() => (setMore([]), first.reload())} disabled=${first.loading}>Refresh</button>`}
    >
      ${first.data && events.length === 0 ? html`<p class="muted">Nothing published yet.</p>` : null}
      <ul class="events">${events.map((e) => html`<${EventItem} key=${e.id} e=${e} tz=${me.timezone} />`)}</ul>
      ${first.loading && !first.data ? html`<${Loading} what="your history" />` : null}
      ${cursor ? html`<button type="button" onClick=${loadMore} disabled=${next.busy}>Older events</button>` : null}
      <${ErrorNote} error=${first.error ?? next.error} />
    <//>
  </div>`;
}
