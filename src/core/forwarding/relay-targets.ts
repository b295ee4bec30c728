// Relay targets: whether a relay URL may be used (the SSRF guard) and how a user's NIP-65 relay list becomes their
// write relays. A user-supplied relay URL makes this server open connections wherever the user points it, so a
// host is refused when ANY address it resolves to is loopback, private, link-local, multicast, unspecified or
// reserved, unless the operator sets ALLOW_PRIVATE_RELAYS=true. The check runs when a relay is added (API, NIP-65)
// and again on every connect (guardedLookup), because DNS answers can change between the two.
import dns from 'node:dns';
import net from 'node:net';
import type { Knex } from 'knex';
import { classifyAddress, parseRelayUrl, type AddressClass } from '../../nips/relay-url.js';
import { fail, failWith, ok, type Result } from '../../nips/result.js';
import type { NostrEvent } from '../../nips/nip01.js';
import * as nip65 from '../../nips/nip65.js';
import {
  addUserRelay,
  replaceNip65Relays,
  type AddRelayOutcome,
  type RelayListChange,
} from '../../store/user-relays.js';
import { withDeadline } from '../../lib/deadline.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/** Resolves a host name to every address the system resolver gives (dns.lookup, the resolver `net` uses). */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

const systemResolver: Resolver = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

export interface AddressPolicy {
  /** ALLOW_PRIVATE_RELAYS: loopback, private, link-local and reserved addresses are allowed too. */
  readonly allowPrivate: boolean;
  /** Injectable for tests; default dns.lookup. */
  readonly resolve?: Resolver;
  /** Bound on one resolution (default 3 s). */
  readonly timeoutMs?: number;
}

// Even with ALLOW_PRIVATE_RELAYS nothing can be reached on these.
const neverAllowed: ReadonlySet<AddressClass> = new Set(['multicast', 'unspecified']);

function addressAllowed(cls: AddressClass, allowPrivate: boolean): boolean {
  if (cls === 'public') return true;
  return allowPrivate && !neverAllowed.has(cls);
}

const notFoundCodes = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA']);

/**
 * Resolves `host` (an IP literal resolves to itself) and checks every address against the policy. Returns the
 * addresses, or a rejection naming the host, the offending address and its class. A name that does not exist is
 * `invalid:`; a resolver failure (timeout, SERVFAIL) is `error:` (it may work later).
 */
export async function checkHost(host: string, policy: AddressPolicy): Promise<Result<ResolvedAddress[]>> {
  let addresses: ResolvedAddress[];
  if (net.isIP(host) !== 0) {
    addresses = [{ address: host, family: net.isIP(host) }];
  } else {
    try {
      const ms = policy.timeoutMs ?? 3000;
      addresses = await withDeadline((policy.resolve ?? systemResolver)(host), ms, () =>
        Object.assign(new Error(`resolving ${host} took longer than ${ms} ms`), { code: 'ETIMEOUT' }),
      );
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && notFoundCodes.has(code))
        return fail('invalid', `relay host ${host} does not resolve`);
      return fail(
        'error',
        `could not resolve relay host ${host} (${typeof code === 'string' ? code : 'resolver error'}), try again later`,
      );
    }
  }
  if (addresses.length === 0) return fail('invalid', `relay host ${host} does not resolve`);
  for (const a of addresses) {
    const cls = classifyAddress(a.address);
    if (!addressAllowed(cls, policy.allowPrivate)) {
      const what = a.address === host ? `relay host ${host} is` : `relay host ${host} resolves to ${a.address},`;
      return fail('invalid', `${what} a ${cls} address; only public addresses are allowed`);
    }
  }
  return ok(addresses);
}

/**
 * For POST /v1/relays and NIP-65 lists: the normalised relay URL (lowercase host, default port dropped, '/' path)
 * when it is a ws:// or wss:// URL whose host resolves only to allowed addresses; else a rejection whose message
 * names the reason (`invalid: relay URL must start with ws:// or wss://`, `invalid: relay host 10.0.0.1 is a
 * private address; only public addresses are allowed`, `error: could not resolve …`).
 */
export async function validateRelayUrl(url: string, policy: AddressPolicy): Promise<Result<string>> {
  const parsed = parseRelayUrl(url);
  if (!parsed.ok) return failWith(parsed.rejection);
  const checked = await checkHost(parsed.value.host, policy);
  if (!checked.ok) return failWith(checked.rejection);
  return ok(parsed.value.url);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/** An error `net` reports as the connection failure; code ENOTALLOWED marks the SSRF refusal. */
class AddressNotAllowedError extends Error {
  readonly code = 'ENOTALLOWED';
  override name = 'AddressNotAllowedError';
}

/**
 * A `lookup` for net/http/ws connections that resolves the host and refuses the connection when any address is
 * not allowed, so the address checked is the address connected to (no window between check and connect).
 * `net` does not call lookup for IP literals: check those with checkHost before connecting.
 */
export function guardedLookup(policy: AddressPolicy) {
  return (hostname: string, options: dns.LookupOptions | number | undefined, callback: LookupCallback): void => {
    const all = typeof options === 'object' && options !== null && options.all === true;
    const family = typeof options === 'object' && options !== null ? options.family : options;
    checkHost(hostname, policy).then(
      (r) => {
        if (!r.ok) {
          const code =
            r.rejection.prefix === 'invalid' && /does not resolve/.test(r.rejection.message)
              ? 'ENOTFOUND'
              : 'ENOTALLOWED';
          const err: NodeJS.ErrnoException =
            code === 'ENOTALLOWED'
              ? new AddressNotAllowedError(r.rejection.message)
              : Object.assign(new Error(r.rejection.message), { code });
          callback(err, all ? [] : '', 0);
          return;
        }
        const wanted = family === 4 || family === 6 ? r.value.filter((a) => a.family === family) : r.value;
        const list = wanted.length > 0 ? wanted : r.value;
        if (all)
          callback(
            null,
            list.map((a) => ({ address: a.address, family: a.family })),
          );
        else callback(null, list[0]?.address ?? '', list[0]?.family ?? 4);
      },
      (err: unknown) => callback(err as NodeJS.ErrnoException, all ? [] : '', 0),
    );
  };
}

/** The write relays of a NIP-65 list, in tag order, each with its read flag (no marker means read and write). */
export function relayListEntries(ev: Pick<NostrEvent, 'tags'>): { url: string; read: boolean }[] {
  const readable = new Set<string>();
  for (const t of ev.tags) {
    if (t[0] !== 'r' || t[1] === undefined) continue;
    if (t[2] !== undefined && t[2] !== '' && t[2] !== 'read') continue;
    const p = parseRelayUrl(t[1]);
    if (p.ok) readable.add(p.value.url);
  }
  return nip65.writeRelays(ev).map((url) => ({ url, read: readable.has(url) }));
}

export interface RelayListResult extends RelayListChange {
  /** Write relays of the list that were refused, with the reason (SSRF guard, bad URL, over the cap). */
  readonly refused: { url: string; reason: string }[];
}

/**
 * Applies a user's NIP-65 relay list (kind 10002) to user_relays, inside the caller's transaction: its write relays
 * become the user's `nip65` relays (each checked by validateRelayUrl), relays that left the list are deactivated
 * (their stats are kept), and relays the user added through the API are left as they are. At most `max` custom
 * relays stay active; the list's order decides which ones.
 */
export async function applyRelayList(
  trx: Knex.Transaction,
  userId: string,
  ev: Pick<NostrEvent, 'tags'>,
  opts: AddressPolicy & { max: number },
): Promise<RelayListResult> {
  const entries = relayListEntries(ev).slice(0, Math.max(opts.max, 0) + 20);
  const checked = await Promise.all(entries.map(async (e) => ({ e, r: await validateRelayUrl(e.url, opts) })));
  const refused = checked
    .filter((c) => !c.r.ok)
    .map((c) => ({ url: c.e.url, reason: c.r.ok ? '' : c.r.rejection.message }));
  const allowed = checked.filter((c) => c.r.ok).map((c) => c.e);
  const change = await replaceNip65Relays(trx, userId, allowed, opts.max);
  for (const url of change.skipped)
    refused.push({ url, reason: `restricted: more than ${opts.max} relays of your own` });
  return { ...change, refused };
}

/**
 * For POST /v1/relays: checks that the plan allows relays of one's own, validates the URL (SSRF guard), then adds
 * it (or reactivates it) unless the user already has `max` active relays of their own.
 */
export async function addOwnRelay(
  db: Knex,
  userId: string,
  input: { url: string; name?: string | undefined; read?: boolean | undefined; write?: boolean | undefined },
  opts: AddressPolicy & { max: number; customRelaysAllowed: boolean },
): Promise<Result<AddRelayOutcome>> {
  if (!opts.customRelaysAllowed) return fail('restricted', 'your plan does not include relays of your own');
  const valid = await validateRelayUrl(input.url, opts);
  if (!valid.ok) return failWith(valid.rejection);
  const outcome = await addUserRelay(db, userId, { ...input, url: valid.value }, { max: opts.max });
  if (outcome.status === 'limit')
    return fail('restricted', `you already have ${outcome.limit} relays of your own, the most your plan allows`);
  return ok(outcome);
}
