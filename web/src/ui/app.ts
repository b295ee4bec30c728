// The page: signed out, the sign-in; signed in, the user's pages and, for ADMIN_PUBKEYS, the operator's console.
// Pages are chosen by the URL's hash (#/history, #/admin/users …), so the browser's back button and links work.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api } from '../lib/api.js';
import { shortKey } from '../lib/format.js';
import { clearSession, loadSession, saveSession, type StoredSession } from '../lib/session.js';
import type { Profile } from '../lib/types.js';
import { ErrorNote, Loading, useAction, useLoad } from './common.js';
import { SignIn } from './sign-in.js';
import { AccountPage } from './user/account.js';
import { BillingPage } from './user/billing.js';
import { HistoryPage } from './user/history.js';
import { RelaysPage } from './user/relays.js';
import { SessionsPage } from './user/sessions.js';
import { SettingsPage } from './user/settings.js';
import { AuditPage } from './admin/audit.js';
import { ModerationPage } from './admin/moderation.js';
import { OverviewPage } from './admin/overview.js';
import { ReportsPage } from './admin/reports.js';
import { UsersPage } from './admin/users.js';

export interface PageProps {
  readonly api: Api;
  readonly me: Profile;
  readonly session: StoredSession;
  /** Reload the profile (after a change of settings). */
  readonly refreshMe: () => void;
  readonly signOut: (notice: string) => Promise<void>;
}

interface Route {
  readonly path: string;
  readonly label: string;
  readonly page: (p: PageProps) => VNode;
}

const userRoutes: Route[] = [
  { path: 'account', label: 'Account', page: AccountPage },
  { path: 'history', label: 'History', page: HistoryPage },
  { path: 'relays', label: 'Relays', page: RelaysPage },
  { path: 'billing', label: 'Billing', page: BillingPage },
  { path: 'sessions', label: 'Sessions', page: SessionsPage },
  { path: 'settings', label: 'Settings', page: SettingsPage },
];

const adminRoutes: Route[] = [
  { path: 'admin/overview', label: 'Overview', page: OverviewPage },
  { path: 'admin/reports', label: 'Reports', page: ReportsPage },
  { path: 'admin/users', label: 'Users', page: UsersPage },
  { path: 'admin/moderation', label: 'Bans', page: ModerationPage },
  { path: 'admin/audit', label: 'Audit log', page: AuditPage },
];

function useHashPath(): string {
  const read = () => location.hash.replace(/^#\/?/, '') || 'account';
  const [path, setPath] = useState(read);
  useEffect(() => {
    const on = () => setPath(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return path;
}

export function App(): VNode {
  const [session, setSession] = useState<StoredSession | null>(loadSession);
  const [notice, setNotice] = useState<string | null>(null);
  const api = useMemo(
    () =>
      new Api({
        origin: location.origin,
        token: () => loadSession()?.token ?? null,
        signer: () => window.nostr ?? null,
        onSessionEnded: (why) => {
          clearSession();
          setSession(null);
          setNotice(why);
        },
      }),
    [],
  );

  if (!session) {
    return html`<${SignIn}
      api=${api}
      notice=${notice}
      onSignedIn=${(s: StoredSession) => {
        saveSession(s);
        setNotice(null);
        setSession(s);
      }}
    />`;
  }

  const signOut = async (text: string) => {
    clearSession();
    setSession(null);
    setNotice(text);
  };
  return html`<${Shell} api=${api} session=${session} signOut=${signOut} />`;
}

function Shell({
  api,
  session,
  signOut,
}: {
  api: Api;
  session: StoredSession;
  signOut: (notice: string) => Promise<void>;
}): VNode {
  const me = useLoad(() => api.get<Profile>('/v1/me'), [session.token]);
  const path = useHashPath();
  const leaving = useAction();

  const signOutHere = () =>
    leaving.run(async () => {
      await api.call('DELETE', '/v1/sessions/current');
      await signOut('You are signed out; this session was revoked.');
    });

  const profile = me.data;
  const routes = profile?.admin ? [...userRoutes, ...adminRoutes] : userRoutes;
  const route = routes.find((r) => r.path === path) ?? userRoutes[0];
  const nav = (list: Route[], label: string) =>
    html`<nav aria-label=${label}>
      <ul class="tabs">
        ${list.map((r) => html`<li><a href=${`#/${r.path}`} aria-current=${r === route ? 'page' : undefined}>${r.label}</a></li>`)}
      </ul>
    </nav>`;

  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <span class="brand">NostrX</span>
      <span class="who" title=${session.pubkey}>${profile?.display_name || shortKey(session.pubkey)}</span>
      <button type="button" onClick=${signOutHere} disabled=${leaving.busy}>Sign out</button>
    </header>
    <${ErrorNote} error=${leaving.error} />
    ${nav(userRoutes, 'Your account')}
    ${profile?.admin ? html`<div class="console-nav"><span class="console-label" aria-hidden="true">Operator</span>${nav(adminRoutes, 'Operator console')}</div>` : null}
    ${
      profile?.status === 'suspended'
        ? html`<p class="error" role="alert">Your account is suspended: the relay refuses your events until an operator reactivates it.</p>`
        : null
    }
    <main id="main" tabindex="-1">
      ${profile && route ? html`<${route.page} api=${api} me=${profile} session=${session} refreshMe=${() => me.reload()} signOut=${signOut} />` : null}
      ${!profile && me.loading ? html`<${Loading} what="your account" />` : null}
      <${ErrorNote} error=${profile ? undefined : me.error} />
    </main>
  </div>`;
}
