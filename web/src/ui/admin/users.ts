// The operator's user list: search (a pubkey, or part of an email or display name), filter by status and plan,
// change a user's plan, suspend and reactivate (GET /v1/admin/users, PUT …/plan and …/status; audited).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { dateTime, shortKey } from '../../lib/format.js';
import type { AdminUser, Plan } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Card, ErrorNote, Loading, useAction, useLoad, valueOf } from '../common.js';

interface Page {
  users: AdminUser[];
  next_cursor: string | null;
}

const statuses = ['active', 'suspended', 'pending_verification', 'deleted'];

function query(f: { search: string; status: string; plan: string }, cursor?: string): string {
  const p = new URLSearchParams({ limit: '25' });
  const s = f.search.trim();
  if (/^[0-9a-f]{64}$/.test(s)) p.set('pubkey', s);
  else if (s) p.set('q', s);
  if (f.status) p.set('status', f.status);
  if (f.plan) p.set('plan', f.plan);
  if (cursor) p.set('cursor', cursor);
  return `/v1/admin/users?${p}`;
}

function UserRow({
  api,
  u,
  plans,
  changed,
}: {
  api: PageProps['api'];
  u: AdminUser;
  plans: Plan[];
  changed: (u: AdminUser) => void;
}): VNode {
  const [plan, setPlan] = useState(u.plan);
  const act = useAction();
  const suspended = u.status === 'suspended';
  const setStatus = (status: string) =>
    act.run(async () => changed(await api.signed<AdminUser>('PUT', `/v1/admin/users/${u.id}/status`, { status })));
  const changePlan = () =>
    act.run(async () => changed(await api.signed<AdminUser>('PUT', `/v1/admin/users/${u.id}/plan`, { plan })));
  const who = u.display_name || u.email || shortKey(u.pubkey);
  return html`<li class="user" data-pubkey=${u.pubkey} data-status=${u.status}>
    <div>
      <strong>${who}</strong> <span class=${`tag status-${u.status}`}>${u.status}</span>
      <p class="muted small mono" title=${u.pubkey}>${u.pubkey}</p>
      <p class="muted small">${u.plan} plan · joined ${dateTime(u.created_at)}</p>
    </div>
    <div class="row-actions">
      <label>Plan <span class="sr-only">of ${who}</span>
        <select value=${plan} onChange=${(e: Event) => setPlan(valueOf(e))}>
          ${(plans.some((p) => p.code === u.plan) ? plans : [{ code: u.plan, name: u.plan } as Plan, ...plans]).map((p) => html`<option value=${p.code}>${p.name}</option>`)}
        </select>
      </label>
      <button type="button" disabled=${act.busy || plan === u.plan} onClick=${changePlan}>Change plan</button>
      ${
        u.status !== 'deleted'
          ? html`<button type="button" class=${suspended ? '' : 'danger'} disabled=${act.busy} onClick=${() => setStatus(suspended ? 'active' : 'suspended')}>
            ${suspended ? 'Reactivate' : 'Suspend'}<span class="sr-only"> ${who}</span>
          </button>`
          : null
      }
    </div>
    <${ErrorNote} error=${act.error} />
  </li>`;
}

export function UsersPage({ api }: PageProps): VNode {
  const [draft, setDraft] = useState({ search: '', status: '', plan: '' });
  const [filter, setFilter] = useState(draft);
  const [more, setMore] = useState<Page[]>([]);
  const [edited, setEdited] = useState<Record<string, AdminUser>>({});
  const plans = useLoad(() => api.get<{ plans: Plan[] }>('/v1/plans'), []);
  const first = useLoad(() => api.signed<Page>('GET', query(filter)), [filter]);
  const next = useAction();
  const pages = first.data ? [first.data, ...more] : [];
  const cursor = pages.at(-1)?.next_cursor;
  const users = pages.flatMap((p) => p.users).map((u) => edited[u.id] ?? u);

  const search = (e: Event) => {
    e.preventDefault();
    setMore([]);
    setEdited({});
    setFilter({ ...draft });
  };
  const loadMore = () =>
    next.run(async () => cursor && setMore([...more, await api.signed<Page>('GET', query(filter, cursor))]));

  return html`<div class="page">
    <${Card} title="Users" id="users-title">
      <form class="inline-form" onSubmit=${search} role="search">
        <label>Search <input type="search" placeholder="pubkey, email or name" value=${draft.search} onInput=${(e: Event) => setDraft((d) => ({ ...d, search: valueOf(e) }))} /></label>
        <label>Status <select value=${draft.status} onChange=${(e: Event) => setDraft((d) => ({ ...d, status: valueOf(e) }))}>
          <option value="">any</option>${statuses.map((s) => html`<option value=${s}>${s}</option>`)}
        </select></label>
        <label>Plan <select value=${draft.plan} onChange=${(e: Event) => setDraft((d) => ({ ...d, plan: valueOf(e) }))}>
          <option value="">any</option>${(plans.data?.plans ?? []).map((p) => html`<option value=${p.code}>${p.name}</option>`)}
        </select></label>
        <button type="submit" class="primary">Search</button>
      </form>
      ${first.data && users.length === 0 ? html`<p class="muted">No user matches.</p>` : null}
      <ul class="users">
        ${users.map((u) => html`<${UserRow} key=${u.id} api=${api} u=${u} plans=${plans.data?.plans ?? []} changed=${(v: AdminUser) => setEdited((m) => ({ ...m, [v.id]: v }))} />`)}
      </ul>
      ${first.loading && !first.data ? html`<${Loading} what="users" />` : null}
      ${cursor ? html`<button type="button" onClick=${loadMore} disabled=${next.busy}>More users</button>` : null}
      <${ErrorNote} error=${first.error ?? next.error ?? plans.error} />
    <//>
  </div>`;
}
