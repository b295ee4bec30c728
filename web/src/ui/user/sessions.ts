// The user's live sessions (this tab's among them): where and when each was started and last used, and a button
// to revoke it. Revoking this tab's own session signs this tab out.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { dateTime } from '../../lib/format.js';
import type { Session } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Card, ErrorNote, Loading, useAction, useLoad } from '../common.js';

function SessionRow({ s, tz, revoke }: { s: Session; tz: string; revoke: (s: Session) => Promise<void> }): VNode {
  const act = useAction();
  const what = [s.extension_id, s.browser_name, s.os].filter(Boolean).join(' · ') || 'session';
  return html`<li class="session" data-session-id=${s.id}>
    <div>
      <strong>${what}</strong>${s.current ? html` <span class="tag">this tab</span>` : null}
      <p class="muted small">
        Started ${dateTime(s.created_at, tz)}${s.ip_address ? ` from ${s.ip_address}` : ''} · last used ${dateTime(s.last_used_at, tz)} · expires ${dateTime(s.expires_at, tz)}
      </p>
    </div>
    <button type="button" class="danger" disabled=${act.busy} onClick=${() => act.run(() => revoke(s))}>
      ${s.current ? 'Sign out' : 'Revoke'}<span class="sr-only"> session started ${dateTime(s.created_at, tz)}</span>
    </button>
    <${ErrorNote} error=${act.error} />
  </li>`;
}

export function SessionsPage({ api, me, signOut }: PageProps): VNode {
  const list = useLoad(() => api.get<{ sessions: Session[] }>('/v1/sessions'), []);
  const revoke = async (s: Session) => {
    await api.call('DELETE', s.current ? '/v1/sessions/current' : `/v1/sessions/${s.id}`);
    if (s.current) await signOut('You are signed out; this session was revoked.');
    else list.reload();
  };
  return html`<div class="page">
    <${Card} title="Sessions" id="sessions-title" actions=${html`<button type="button" onClick=${() => list.reload()} disabled=${list.loading}>Refresh</button>`}>
      <p class="muted small">Each signed-in tab, popup or extension has a session. Revoke one you do not recognise.</p>
      ${list.data ? html`<ul class="sessions">${list.data.sessions.map((s) => html`<${SessionRow} key=${s.id} s=${s} tz=${me.timezone} revoke=${revoke} />`)}</ul>` : html`<${Loading} what="your sessions" />`}
      <${ErrorNote} error=${list.error} />
    <//>
  </div>`;
}
