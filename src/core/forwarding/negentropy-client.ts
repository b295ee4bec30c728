// NIP-77 as a client of an upstream relay: opens a WebSocket (through the same SSRF guard as forwarding, unless the
// relay is one of the operator's), sends NEG-OPEN with our set for a filter, answers each NEG-MSG with the
// initiator (nips/nip77.ts) until it has nothing more to say, then NEG-CLOSE. The outcome: the ids only we hold
// (`have`) and the ids only the relay holds (`need`), or why it could not be done.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocket, type ClientOptions } from 'ws';
import * as nip77 from '../../nips/nip77.js';
import type { Filter } from '../../nips/filter.js';
import { parseRelayUrl } from '../../nips/relay-url.js';
import { checkHost, guardedLookup, type AddressPolicy } from './relay-targets.js';
import { rawText } from '../../lib/ws-text.js';

export type ReconcileOutcome =
  | { readonly ok: true; readonly have: string[]; readonly need: string[] }
  | { readonly ok: false; readonly error: string };

export interface ReconcileOptions {
  readonly timeoutMs: number;
  readonly policy: AddressPolicy;
  /** The operator's own relays (UPSTREAM_RELAYS) skip the SSRF guard, as for forwarding. */
  readonly trusted: boolean;
  readonly userAgent?: string;
}

/** The filter as NIP-01 JSON (tags under `#x`). */
function wireFilter(f: Filter): Record<string, unknown> {
  const { tags, ...rest } = f;
  const out: Record<string, unknown> = { ...rest };
  for (const [k, v] of Object.entries(tags ?? {})) out[`#${k}`] = v;
  return out;
}

export async function reconcileWith(
  url: string,
  f: Filter,
  ours: Iterable<{ createdAt: number; id: string }>,
  o: ReconcileOptions,
): Promise<ReconcileOutcome> {
  const parsed = parseRelayUrl(url);
  if (!parsed.ok) return { ok: false, error: parsed.rejection.message };
  if (!o.trusted && net.isIP(parsed.value.host) !== 0) {
    const allowed = await checkHost(parsed.value.host, o.policy);
    if (!allowed.ok) return { ok: false, error: allowed.rejection.message };
  }
  const initiator = nip77.createInitiator(nip77.storageOf(ours));
  const options: ClientOptions & { lookup?: ReturnType<typeof guardedLookup> } = {
    handshakeTimeout: o.timeoutMs,
    perMessageDeflate: false,
    followRedirects: false,
    maxPayload: 4 * 1024 * 1024,
    headers: { 'User-Agent': o.userAgent ?? 'nostrx-relay' },
    ...(o.trusted ? {} : { lookup: guardedLookup(o.policy) }),
  };
  const ws = new WebSocket(url, options);
  const subId = `audit-${randomBytes(6).toString('hex')}`;
  const have = new Set<string>();
  const need = new Set<string>();
  return new Promise<ReconcileOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: ReconcileOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (outcome.ok && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(['NEG-CLOSE', subId]));
      ws.close();
      resolve(outcome);
    };
    const timer = setTimeout(
      () => finish({ ok: false, error: `no complete reconciliation within ${o.timeoutMs} ms` }),
      o.timeoutMs,
    );
    ws.on('error', (err) => finish({ ok: false, error: err.message }));
    ws.on('close', () => finish({ ok: false, error: 'the relay closed the connection' }));
    ws.on('open', () => ws.send(JSON.stringify(['NEG-OPEN', subId, wireFilter(f), initiator.initiate()])));
    ws.on('message', (data) => {
      let msg: unknown;
      try {
        msg = JSON.parse(rawText(data));
      } catch {
        return;
      }
      if (!Array.isArray(msg) || msg[1] !== subId) return;
      if (msg[0] === 'NEG-ERR') return finish({ ok: false, error: `the relay ended the session: ${String(msg[2])}` });
      if (msg[0] !== 'NEG-MSG' || typeof msg[2] !== 'string') return;
      try {
        const round = initiator.reconcile(msg[2]);
        for (const id of round.have) have.add(id);
        for (const id of round.need) need.add(id);
        if (round.next === null) return finish({ ok: true, have: [...have], need: [...need] });
        ws.send(JSON.stringify(['NEG-MSG', subId, round.next]));
      } catch (err) {
        finish({
          ok: false,
          error: `malformed negentropy answer: ${err instanceof Error ? err.message : String(err)}`,
        });
      }
    });
  });
}
