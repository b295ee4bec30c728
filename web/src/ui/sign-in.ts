// Sign-in with the user's NIP-07 signer: it signs one NIP-98 request, POST /v1/sessions, and the page keeps the
// session token it gets back. The page never asks for, sees or stores a secret key.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../lib/api.js';
import type { StoredSession } from '../lib/session.js';
import { findSigner, NoSignerError } from '../lib/signer.js';
import { ErrorNote, useAction } from './common.js';

interface Created {
  token: string;
  expires_at: string;
  session: { id: string };
}

export function SignIn({
  api,
  notice,
  onSignedIn,
}: {
  api: Api;
  notice: string | null;
  onSignedIn: (s: StoredSession) => void;
}): VNode {
  const [signer, setSigner] = useState<'looking' | 'found' | 'missing'>('looking');
  const action = useAction();

  useEffect(() => {
    let live = true;
    void findSigner().then((s) => live && setSigner(s ? 'found' : 'missing'));
    return () => {
      live = false;
    };
  }, []);

  const signIn = () =>
    action.run(async () => {
      const nostr = await findSigner(300);
      if (!nostr) {
        setSigner('missing');
        throw new NoSignerError();
      }
      setSigner('found');
      const pubkey = await nostr.getPublicKey();
      const created = await api.signed<Created>('POST', '/v1/sessions', {
        extension_id: 'nostrx-web',
        browser_name: browserName(),
      });
      onSignedIn({ token: created.token, pubkey, sessionId: created.session.id, expiresAt: created.expires_at });
    });

  return html`<main class="sign-in" id="main">
    <h1>NostrX account</h1>
    <p>See your plan and quota, where your posts went, your relays, sessions and payments.</p>
    ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
    <button class="primary" type="button" onClick=${signIn} disabled=${action.busy}>${action.busy ? 'Waiting for your signer…' : 'Sign in with your Nostr signer'}</button>
    ${signer === 'missing' && !action.error ? html`<p class="error" role="alert">${new NoSignerError().message}</p>` : null}
    <${ErrorNote} error=${action.error} />
    <p class="muted small">
      Your signer extension (NIP-07: nos2x, Alby …) signs one login request (NIP-98). NostrX never asks for your secret key; the
      session it gives this tab ends when you sign out or close the tab.
    </p>
  </main>`;
}

function browserName(): string {
  const ua = navigator.userAgent;
  const m = /(Firefox|Edg|OPR|Chrome|Chromium|Safari)\/[\d.]+/.exec(ua);
  return (m?.[1] ?? 'browser').slice(0, 50);
}
