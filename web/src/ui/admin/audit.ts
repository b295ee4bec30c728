// The audit trail: who changed what (plans, statuses, bans, subscriptions), newest first, filtered by actor
// (an admin pubkey, 'user', or a system name), table and user (GET /v1/admin/audit).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { dateTime, shortKey } from '../../lib/format.js';
import type { AuditEntry } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Card, ErrorNote, Loading, useAction, useLoad, valueOf } from '../common.js';
import { Table } from '../table.js';

interface Page {
  entries: AuditEntry[];
  tables: string[];
  next_cursor: string | null;
}

interface Filter {
  actor: string;
  table: string;
  user: string;
}

function query(f: Filter, cursor?: string): string {
  const p = new URLSearchParams({ limit: '50' });
  if (f.actor.trim()) p.set('actor', f.actor.trim());
  if (f.table) p.set('table', f.table);
  if (f.user.trim()) p.set('user_id', f.user.trim());
  if (cursor) p.set('cursor', cursor);
  return `/v1/admin/audit?${p}`;
}

const actorText = (a: string | null) => (a === null ? '—' : /^[0-9a-f]{64}$/.test(a) ? shortKey(a) : a);
const json = (v: unknown) => (v === null || v === undefined ? '—' : JSON.stringify(v));

export function AuditPage({ api }: PageProps): VNode {
  const [draft, setDraft] = useState<Filter>({ actor: '', table: '', user: '' });
  const [filter, setFilter] = useState(draft);
  const [more, setMore] = useState<Page[]>([]);
  const first = useLoad(() => api.signed<Page>('GET', query(filter)), [filter]);
  const next = useAction();
  const pages = first.data ? [first.data, ...more] : [];
  const cursor = pages.at(-1)?.next_cursor;
  const entries = pages.flatMap((p) => p.entries);
  const apply = (e: Event) => {
    e.preventDefault();
    setMore([]);
    setFilter({ ...draft });
  };
  const loadMore = () =>
    next.run(async () => cursor && setMore([...more, await api.signed<Page>('GET', query(filter, cursor))]));

  return html`<div class="page">
    <${Card} title="Audit log" id="audit-title">
      <form class="inline-form" onSubmit=${apply} aria-label="Filter the audit log">
        <label>Actor <input type="text" placeholder="admin pubkey, user, payments" value=${draft.actor} onInput=${(e: Event) => setDraft((d) => ({ ...d, actor: valueOf(e) }))} /></label>
        <label>Table <select value=${draft.table} onChange=${(e: Event) => setDraft((d) => ({ ...d, table: valueOf(e) }))}>
          <option value="">any</option>${(first.data?.tables ?? []).map((t) => html`<option value=${t}>${t}</option>`)}
        </select></label>
        <label>User id <input type="text" pattern="[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" title="a user id (uuid)" value=${draft.user} onInput=${(e: Event) => setDraft((d) => ({ ...d, user: valueOf(e) }))} /></label>
        <button type="submit" class="primary">Filter</button>
      </form>
      ${first.data && entries.length === 0 ? html`<p class="muted">No entries match.</p>` : null}
      ${
        entries.length > 0
          ? html`<${Table}
            className="audit"
            caption="Audit entries, newest first"
            columns=${['When', 'Actor', 'Change', 'User', 'Values']}
            rows=${entries.map((e) => ({
              key: e.id,
              attrs: { 'data-table': e.table },
              cells: [
                dateTime(e.created_at),
                html`<span class="mono" title=${e.actor ?? ''}>${actorText(e.actor)}</span>`,
                `${e.operation} ${e.table}`,
                html`<span class="mono small">${e.user_id ?? '—'}</span>`,
                html`<details class="mono small"><summary>${json(e.new_values).slice(0, 40)}</summary><p>before: ${json(e.old_values)}</p><p>after: ${json(e.new_values)}</p></details>`,
              ],
            }))}
          />`
          : null
      }
      ${first.loading && !first.data ? html`<${Loading} what="the audit log" />` : null}
      ${cursor ? html`<button type="button" onClick=${loadMore} disabled=${next.busy}>Older entries</button>` : null}
      <${ErrorNote} error=${first.error ?? next.error} />
    <//>
  </div>`;
}
