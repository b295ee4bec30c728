// Profile and privacy settings (PATCH /v1/me), the export of everything the service holds about the user
// (GET /v1/me/export) and the erasure of the account (DELETE /v1/me, signed by the signer, after a confirmation).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import type { Profile } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Card, checkedOf, ErrorNote, useAction, valueOf } from '../common.js';

type Form = Pick<
  Profile,
  'display_name' | 'email' | 'timezone' | 'locale' | 'data_retention_days' | 'analytics_enabled' | 'marketing_emails'
>;

const fields = (p: Profile): Form => ({
  display_name: p.display_name,
  email: p.email,
  timezone: p.timezone,
  locale: p.locale,
  data_retention_days: p.data_retention_days,
  analytics_enabled: p.analytics_enabled,
  marketing_emails: p.marketing_emails,
});

function timeZones(current: string): string[] {
  const all = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return all.includes(current) ? all : [current, ...all];
}

/** The fields that differ from the profile, with empty texts as null. */
function changes(form: Form, me: Profile): Partial<Form> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(form) as [keyof Form, Form[keyof Form]][]) {
    const value = typeof v === 'string' && (k === 'display_name' || k === 'email') && v.trim() === '' ? null : v;
    if (value !== me[k]) out[k] = value;
  }
  return out as Partial<Form>;
}

function ProfileForm({ api, me, refreshMe }: PageProps): VNode {
  const [form, setForm] = useState<Form>(() => fields(me));
  const [saved, setSaved] = useState(false);
  const save = useAction();
  const set = <K extends keyof Form>(k: K, v: Form[K]) => {
    setSaved(false);
    setForm((f) => ({ ...f, [k]: v }));
  };
  const submit = (e: Event) => {
    e.preventDefault();
    const diff = changes(form, me);
    if (Object.keys(diff).length === 0) return setSaved(true);
    void save.run(async () => {
      await api.call('PATCH', '/v1/me', diff);
      setSaved(true);
      refreshMe();
    });
  };
  return html`<form class="stack" onSubmit=${submit}>
    <label>Display name <input type="text" maxlength="100" value=${form.display_name ?? ''} onInput=${(e: Event) => set('display_name', valueOf(e))} /></label>
    <label>Email (optional) <input type="email" maxlength="320" value=${form.email ?? ''} onInput=${(e: Event) => set('email', valueOf(e))} /></label>
    <label>Timezone (your quota day starts at its midnight)
      <select value=${form.timezone} onChange=${(e: Event) => set('timezone', valueOf(e))}>
        ${timeZones(me.timezone).map((z) => html`<option value=${z}>${z}</option>`)}
      </select>
    </label>
    <label>Language <input type="text" minlength="2" maxlength="10" value=${form.locale} onInput=${(e: Event) => set('locale', valueOf(e))} /></label>
    <fieldset>
      <legend>Privacy</legend>
      <label>Keep my data for (days, 0 = as long as the service keeps it)
        <input type="number" min="0" max="3650" value=${form.data_retention_days} onInput=${(e: Event) => set('data_retention_days', Number(valueOf(e)))} />
      </label>
      <label class="check"><input type="checkbox" checked=${form.analytics_enabled} onChange=${(e: Event) => set('analytics_enabled', checkedOf(e))} /> Keep statistics about my posts</label>
      <label class="check"><input type="checkbox" checked=${form.marketing_emails} onChange=${(e: Event) => set('marketing_emails', checkedOf(e))} /> Send me news by email</label>
    </fieldset>
    <div class="row"><button type="submit" class="primary" disabled=${save.busy}>Save settings</button>${saved ? html`<span role="status">Saved.</span>` : null}</div>
    <${ErrorNote} error=${save.error} />
  </form>`;
}

function ExportData({ api }: Pick<PageProps, 'api'>): VNode {
  const act = useAction();
  const download = () =>
    act.run(async () => {
      const data = await api.get<unknown>('/v1/me/export');
      const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = 'nostrx-export.json';
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
  return html`<p>Everything the service holds about you, table by table, as one JSON file.</p>
    <button type="button" onClick=${download} disabled=${act.busy}>${act.busy ? 'Preparing…' : 'Download my data'}</button>
    <${ErrorNote} error=${act.error} />`;
}

function DeleteAccount({ api, signOut }: Pick<PageProps, 'api' | 'signOut'>): VNode {
  const [typed, setTyped] = useState('');
  const act = useAction();
  const erase = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      // NIP-98 signed by your signer: a session token alone cannot erase an account.
      await api.signed('DELETE', '/v1/me');
      await signOut('Your account and its data were erased.');
    });
  };
  return html`<form class="stack" onSubmit=${erase}>
    <p>
      Erases your events, relays, sessions, quota and statistics, and cancels your subscription. Payment records are kept without anything that
      identifies you. This cannot be undone; your signer is asked to confirm.
    </p>
    <label>Type <strong>delete my account</strong> to confirm <input type="text" value=${typed} onInput=${(e: Event) => setTyped(valueOf(e))} autocomplete="off" /></label>
    <button type="submit" class="danger" disabled=${act.busy || typed.trim().toLowerCase() !== 'delete my account'}>Erase my account</button>
    <${ErrorNote} error=${act.error} />
  </form>`;
}

export function SettingsPage(p: PageProps): VNode {
  return html`<div class="page">
    <${Card} title="Profile and privacy" id="profile-title"><${ProfileForm} ...${p} /><//>
    <${Card} title="Your data" id="export-title"><${ExportData} api=${p.api} /><//>
    <${Card} title="Delete account" id="delete-title"><${DeleteAccount} api=${p.api} signOut=${p.signOut} /><//>
  </div>`;
}
