// The user's own upstream relays (plans with custom relays): add, switch off, remove, and where each came from:
// added here, or from their NIP-65 relay list (a kind-10002 event published to this relay).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { percent100 } from '../../lib/format.js';
import type { Billing, Plan, UserRelay } from '../../lib/types.js';
import type { PageProps } from '../app.js';
import { Card, ErrorNote, Loading, useAction, useLoad, valueOf } from '../common.js';

const sourceText: Record<UserRelay['source'], string> = {
  api: 'added here',
  nip65: 'from your NIP-65 relay list',
  default: 'service default',
};

function RelayRow({ api, r, changed }: { api: PageProps['api']; r: UserRelay; changed: () => void }): VNode {
  const act = useAction();
  const markers = [r.read ? 'read' : null, r.write ? 'write' : null].filter(Boolean).join(' + ') || 'no markers';
  return html`<li class="relay" data-relay=${r.url}>
    <div class="relay-main">
      <span class="relay-url">${r.name ? html`<strong>${r.name}</strong> ` : null}${r.url}</span>
      <span class="muted small">${sourceText[r.source]} · ${markers} · ${r.is_active ? 'active' : 'switched off'}${r.stats?.total_publishes ? ` · ${percent100(r.stats.success_rate ?? null)} of ${r.stats.total_publishes} accepted` : ''}</span>
    </div>
    <div class="row-actions">
      <button type="button" disabled=${act.busy} onClick=${() => act.run(async () => (await api.call('PATCH', `/v1/relays/${r.id}`, { is_active: !r.is_active }), changed()))}>
        ${r.is_active ? 'Switch off' : 'Switch on'}<span class="sr-only"> ${r.url}</span>
      </button>
      <button type="button" class="danger" disabled=${act.busy} onClick=${() => act.run(async () => (await api.call('DELETE', `/v1/relays/${r.id}`), changed()))}>
        Remove<span class="sr-only"> ${r.url}</span>
      </button>
    </div>
    <${ErrorNote} error=${act.error} />
  </li>`;
}

function OwnRelays({ api }: Pick<PageProps, 'api'>): VNode {
  const list = useLoad(() => api.get<{ relays: UserRelay[]; max: number }>('/v1/relays'), []);
  const [url, setUrl] = useState('');
  const [name, setName] = useState('');
  const add = useAction();
  const relays = list.data?.relays ?? [];
  const fromNip65 = relays.filter((r) => r.source === 'nip65').length;

  const submit = (e: Event) => {
    e.preventDefault();
    void add.run(async () => {
      await api.call('POST', '/v1/relays', { url: url.trim(), ...(name.trim() ? { name: name.trim() } : {}) });
      setUrl('');
      setName('');
      list.reload();
    });
  };

  return html`
    <p class="muted" data-nip65=${fromNip65 > 0 ? 'yes' : 'no'}>
      ${
        fromNip65 > 0
          ? `${fromNip65} of these come from your NIP-65 relay list; publishing a new list (kind 10002) to this relay updates them.`
          : 'No NIP-65 relay list yet: publish one (kind 10002) from your Nostr client to this relay and its write relays are added here.'
      }
    </p>
    ${list.data ? html`<p class="muted small">${relays.filter((r) => r.is_active).length} of at most ${list.data.max} active.</p>` : html`<${Loading} what="your relays" />`}
    <ul class="relays">${relays.map((r) => html`<${RelayRow} key=${r.id} api=${api} r=${r} changed=${() => list.reload()} />`)}</ul>
    <form class="inline-form" onSubmit=${submit}>
      <label>Relay URL <input type="text" inputmode="url" required placeholder="wss://relay.example.com" value=${url} onInput=${(e: Event) => setUrl(valueOf(e))} /></label>
      <label>Name (optional) <input type="text" maxlength="100" value=${name} onInput=${(e: Event) => setName(valueOf(e))} /></label>
      <button type="submit" class="primary" disabled=${add.busy}>Add relay</button>
    </form>
    <${ErrorNote} error=${add.error ?? list.error} />
  `;
}

export function RelaysPage({ api }: PageProps): VNode {
  const billing = useLoad(() => api.get<Billing>('/v1/subscription'), []);
  const plans = useLoad(() => api.get<{ plans: Plan[] }>('/v1/plans'), []);
  const plan = billing.data?.plan;
  const upgrade = plans.data?.plans.find((p) => p.custom_relays_allowed);
  return html`<div class="page">
    <${Card} title="Your relays" id="relays-title">
      ${!plan ? html`<${Loading} what="your plan" />` : null}
      ${plan && plan.custom_relays_allowed ? html`<${OwnRelays} api=${api} />` : null}
      ${
        plan && !plan.custom_relays_allowed
          ? html`<p>Your posts are forwarded to the service's relays.</p>
            <p class="muted">
              Relays of your own (added here, or read from your NIP-65 relay list) come with ${upgrade ? `the ${upgrade.name} plan` : 'a paid plan'}; see Billing.
            </p>`
          : null
      }
      <${ErrorNote} error=${billing.error ?? plans.error} />
    <//>
  </div>`;
}
