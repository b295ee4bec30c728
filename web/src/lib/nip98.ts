// NIP-98 HTTP auth, signed by the user's NIP-07 signer: a kind-27235 event naming the exact URL and method (and the
// body's sha256 when there is one), sent as `Authorization: Nostr <base64 event>`. A random nonce tag makes two
// identical requests in one second two different events (the server accepts each event once).
import type { Nip07 } from './signer.js';

const hex = (bytes: ArrayBuffer | Uint8Array) =>
  Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');

async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

function base64(text: string): string {
  let binary = '';
  for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}

export async function nip98Header(signer: Nip07, url: string, method: string, body?: string): Promise<string> {
  const tags = [
    ['u', url],
    ['method', method.toUpperCase()],
  ];
  if (body !== undefined) tags.push(['payload', await sha256Hex(body)]);
  tags.push(['nonce', hex(crypto.getRandomValues(new Uint8Array(8)))]);
  const event = await signer.signEvent({ kind: 27235, created_at: Math.floor(Date.now() / 1000), tags, content: '' });
  return `Nostr ${base64(JSON.stringify(event))}`;
}
