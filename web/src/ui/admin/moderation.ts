// Bans and allows through NIP-86 relay management (JSON-RPC at the relay's URL, signed by the operator's signer):
// banned and allowed pubkeys, banned events, and forms to add or lift each. Admission honours a change at once.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import type { PageProps } from '../app.js';
import { Card, ErrorNote, Loading, useAction, useLoad, valueOf } from '../common.js';

interface Listed {
  pubkey?: string;
  id?: string;
  reason: string;
}

interface ListSpec {
  readonly title: string;
  readonly id: string;
  readonly list: string;
  readonly add: string;
  readonly addLabel: string;
  readonly remove: string;
  readonly removeLabel: string;
  readonly field: 'pubkey' | 'id';
  readonly takesReason: boolean;
}

const lists: ListSpec[] = [
  {
    title: 'Banned pubkeys',
    id: 'bans-title',
    list: 'listbannedpubkeys',
    add: 'banpubkey',
    addLabel: 'Ban pubkey',
    remove: 'unbanpubkey',
    removeLabel: 'Lift ban',
    field: 'pubkey',
    takesReason: true,
  },
  {
    title: 'Allowed pubkeys',
    id: 'allows-title',
    list: 'listallowedpubkeys',
    add: 'allowpubkey',
    addLabel: 'Allow pubkey',
    remove: 'unallowpubkey',
    removeLabel: 'Remove',
    field: 'pubkey',
    takesReason: true,
  },
  {
    title: 'Banned events',
    id: 'event-bans-title',
    list: 'listbannedevents',
    add: 'banevent',
    addLabel: 'Ban event',
    remove: 'allowevent',
    removeLabel: 'Lift ban',
    field: 'id',
    takesReason: true,
  },
];

function ListCard({ api, spec }: { api: PageProps['api']; spec: ListSpec }): VNode {
  const items = useLoad(() => api.rpc<Listed[]>(spec.list), []);
  const [value, setValue] = useState('');
  const [reason, setReason] = useState('');
  const act = useAction();
  const label = spec.field === 'pubkey' ? 'Pubkey (hex)' : 'Event id (hex)';

  const add = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      await api.rpc(spec.add, spec.takesReason && reason.trim() ? [value.trim(), reason.trim()] : [value.trim()]);
      setValue('');
      setReason('');
      items.reload();
    });
  };
  const remove = (v: string) => act.run(async () => (await api.rpc(spec.remove, [v]), items.reload()));

  return html`<${Card} title=${spec.title} id=${spec.id}>
    ${
      items.data
        ? items.data.length === 0
          ? html`<p class="muted">None.</p>`
          : html`<ul class="bans">
            ${items.data.map((it) => {
              const v = (spec.field === 'pubkey' ? it.pubkey : it.id) ?? '';
              return html`<li data-value=${v}>
                <span class="mono small">${v}</span>${it.reason ? html` <span class="muted small">— ${it.reason}</span>` : null}
                <button type="button" disabled=${act.busy} onClick=${() => remove(v)}>${spec.removeLabel}<span class="sr-only"> ${v}</span></button>
              </li>`;
            })}
          </ul>`
        : html`<${Loading} what=${spec.title.toLowerCase()} />`
    }
    <form class="inline-form" onSubmit=${add}>
      <label>${label} <input type="text" required pattern="[0-9a-f]{64}" title="64 lowercase hex characters" value=${value} onInput=${(e: Event) => setValue(valueOf(e))} /></label>
      <label>Reason (optional) <input type="text" maxlength="200" value=${reason} onInput=${(e: Event) => setReason(valueOf(e))} /></label>
      <button type="submit" class="primary" disabled=${act.busy}>${spec.addLabel}</button>
    </form>
    <${ErrorNote} error=${act.error ?? items.error} />
  <//>`;
}

export function ModerationPage({ api }: PageProps): VNode {
  return html`<div class="page">
    <p class="muted small">NIP-86 relay management, signed by your signer. A banned pubkey's events are refused at once; allowing one lifts its ban.</p>
    ${lists.map((spec) => html`<${ListCard} key=${spec.list} api=${api} spec=${spec} />`)}
  </div>`;
}
