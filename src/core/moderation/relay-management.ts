// NIP-86 relay management: runs one parsed request (nips/nip86.ts) against the ban lists. The answer is the
// `result` of the reply, or a rejection whose message is the reply's `error`.
import * as nip86 from '../../nips/nip86.js';
import { ok, type Result } from '../../nips/result.js';
import type { Bans, BanKind } from './ban-lists.js';

async function listed(bans: Bans, kind: BanKind, key: 'pubkey' | 'id') {
  return (await bans.list(kind)).map((b) => ({ [key]: b.value, reason: b.reason ?? '' }));
}

/** `actor` is the admin pubkey that signed the request; it goes to audit_log with the change. */
export async function runRpc(bans: Bans, req: nip86.RpcRequest, actor: string): Promise<Result<unknown>> {
  const p = req.params;
  switch (req.method) {
    case 'supportedmethods':
      return ok([...nip86.supportedMethods]);
    case 'banpubkey':
    case 'allowpubkey': {
      const pubkey = nip86.pubkeyParam(p);
      if (!pubkey.ok) return pubkey;
      const reason = nip86.reasonParam(p);
      if (!reason.ok) return reason;
      if (req.method === 'banpubkey') await bans.banPubkey(pubkey.value, reason.value, actor);
      else await bans.allowPubkey(pubkey.value, reason.value, actor);
      return ok(true);
    }
    case 'unbanpubkey':
    case 'unallowpubkey': {
      const pubkey = nip86.pubkeyParam(p);
      if (!pubkey.ok) return pubkey;
      if (req.method === 'unbanpubkey') await bans.unbanPubkey(pubkey.value, actor);
      else await bans.unallowPubkey(pubkey.value, actor);
      return ok(true);
    }
    case 'listbannedpubkeys':
      return ok(await listed(bans, 'pubkey', 'pubkey'));
    case 'listallowedpubkeys':
      return ok(await listed(bans, 'allow', 'pubkey'));
    case 'banevent': {
      const id = nip86.eventIdParam(p);
      if (!id.ok) return id;
      const reason = nip86.reasonParam(p);
      if (!reason.ok) return reason;
      await bans.banEvent(id.value, reason.value, actor);
      return ok(true);
    }
    case 'allowevent': {
      const id = nip86.eventIdParam(p);
      if (!id.ok) return id;
      await bans.allowEvent(id.value, actor);
      return ok(true);
    }
    case 'listbannedevents':
      return ok(await listed(bans, 'event', 'id'));
  }
}
