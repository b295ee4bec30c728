// Delivery audits: for each upstream relay that supports NIP-77, reconcile (as the initiator) what it holds of a
// user's events over the last RECONCILE_DAYS against what we forwarded to it, and send it again what it lacks: new
// outbox rows, which the forwarder delivers and records as attempts like any other. An event the relay had
// acknowledged (OK true) and no longer holds is counted on the relay's row (acknowledged_missing), so a relay that
// loses what it accepted shows in its statistics. Run for every relay once a day (an hourly sweep claims the relays
// not reconciled for a day, so several processes share the work) and for one user on demand (the API).
import net from 'node:net';
import type { Knex } from 'knex';
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import { parseRelayUrl } from '../../nips/relay-url.js';
import {
  claimDueTargets,
  claimUserTargets,
  forwardedTo,
  requeueMissing,
  type AuditTarget,
} from '../../store/delivery-audit.js';
import { saveRelayInfo } from '../../store/relay-stats.js';
import { fetchRelayInfo } from './upstream-info.js';
import { checkHost, guardedLookup } from './relay-targets.js';
import { reconcileWith } from './negentropy-client.js';

export interface AuditResult {
  readonly relay: string;
  readonly supportsNip77: boolean;
  /** Events we forwarded to it in the window (and are not on their way there now). */
  readonly checked: number;
  /** Of those, the ones it does not hold. */
  readonly missing: number;
  /** Of the missing ones, those it had acknowledged (OK true). */
  readonly acknowledgedMissing: number;
  /** Outbox rows written to send the missing ones again. */
  readonly queued: number;
  /** Why the relay could not be reconciled. */
  readonly error?: string;
}

export interface DeliveryAudit {
  /** Reconciles every active write relay of the user now. */
  reconcileUser(userId: string): Promise<AuditResult[]>;
  /** Reconciles the relays not reconciled for a day (the daily audit). */
  sweep(): Promise<AuditResult[]>;
  start(): void;
  stop(): void;
}

export interface DeliveryAuditDeps {
  readonly db: Knex;
  readonly log: Logger;
  readonly config: Pick<Config, 'reconcileDays' | 'upstreamRelays' | 'allowPrivateRelays' | 'forwardTimeoutMs'>;
  /** Told when missing events were queued (the forwarder wakes up). */
  readonly onQueued?: () => void;
  readonly now?: () => number;
}

const DAY_SECONDS = 24 * 3600;
const SWEEP_MS = 3600_000;
const SWEEP_BATCH = 50;

export function createDeliveryAudit(deps: DeliveryAuditDeps): DeliveryAudit {
  const { db, config } = deps;
  const log = deps.log.child({ mod: 'delivery-audit' });
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const policy = { allowPrivate: config.allowPrivateRelays };
  const trusted = new Set(
    config.upstreamRelays.map((u) => parseRelayUrl(u)).flatMap((p) => (p.ok ? [p.value.url] : [])),
  );
  // a session exchanges a few rounds: more time than one publish, still bounded
  const timeoutMs = Math.max(5000, 3 * config.forwardTimeoutMs);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let sweeping: Promise<AuditResult[]> | undefined;

  /** Its NIP-11 supported_nips, fetched (and stored on its rows) when the forwarder has not yet. */
  async function supportedNips(t: AuditTarget): Promise<number[] | null> {
    if (t.supportedNips) return t.supportedNips;
    const isTrusted = trusted.has(t.url);
    const host = parseRelayUrl(t.url);
    if (!host.ok) return null;
    if (!isTrusted && net.isIP(host.value.host) !== 0 && !(await checkHost(host.value.host, policy)).ok) return null;
    try {
      const info = await fetchRelayInfo(t.url, {
        timeoutMs: Math.min(timeoutMs, 5000),
        userAgent: 'nostrx-relay',
        ...(isTrusted ? {} : { lookup: guardedLookup(policy) }),
      });
      await saveRelayInfo(db, t.url, info.info, info.supportedNips);
      return info.supportedNips;
    } catch (err) {
      log.debug({ relay: t.url, err }, 'no NIP-11 document');
      return null;
    }
  }

  async function audit(t: AuditTarget): Promise<AuditResult> {
    const base = { relay: t.url, checked: 0, missing: 0, acknowledgedMissing: 0, queued: 0 };
    if (!(await supportedNips(t))?.includes(77)) return { ...base, supportsNip77: false };
    const since = now() - config.reconcileDays * DAY_SECONDS;
    const sent = await forwardedTo(db, t.userId, t.url, since, now());
    const outcome = await reconcileWith(t.url, { authors: [t.pubkey], since }, sent, {
      timeoutMs,
      policy,
      trusted: trusted.has(t.url),
    });
    if (!outcome.ok) {
      log.warn(
        { relay: t.url, user: t.userId, error: outcome.error },
        'a delivery audit could not reconcile with a relay',
      );
      return { ...base, supportsNip77: true, checked: sent.length, error: outcome.error };
    }
    // `have`: ours, not theirs. What only they hold (the author's posts from elsewhere) is not our concern.
    const lacking = new Set(outcome.have);
    const missing = sent.filter((s) => lacking.has(s.id));
    const acknowledged = missing.filter((m) => m.acknowledged).length;
    const queued = await requeueMissing(
      db,
      t,
      missing.map((m) => m.eventRowId),
      acknowledged,
    );
    if (missing.length > 0) {
      log.warn(
        { relay: t.url, user: t.userId, missing: missing.length, acknowledged },
        'an upstream relay lacks events forwarded to it; sending them again',
      );
      deps.onQueued?.();
    }
    return {
      ...base,
      supportsNip77: true,
      checked: sent.length,
      missing: missing.length,
      acknowledgedMissing: acknowledged,
      queued,
    };
  }

  async function auditAll(targets: readonly AuditTarget[]): Promise<AuditResult[]> {
    const out: AuditResult[] = [];
    for (const t of targets) {
      try {
        out.push(await audit(t));
      } catch (err) {
        log.error({ err, relay: t.url, user: t.userId }, 'a delivery audit failed');
        out.push({
          relay: t.url,
          supportsNip77: true,
          checked: 0,
          missing: 0,
          acknowledgedMissing: 0,
          queued: 0,
          error: 'internal error',
        });
      }
    }
    return out;
  }

  async function sweepAll(): Promise<AuditResult[]> {
    const all: AuditResult[] = [];
    for (;;) {
      const due = await claimDueTargets(db, DAY_SECONDS - 3600, SWEEP_BATCH);
      all.push(...(await auditAll(due)));
      if (due.length < SWEEP_BATCH || stopped) break;
    }
    return all;
  }

  function sweep(): Promise<AuditResult[]> {
    sweeping ??= sweepAll().finally(() => (sweeping = undefined));
    return sweeping;
  }

  return {
    async reconcileUser(userId) {
      return auditAll(await claimUserTargets(db, userId));
    },
    sweep,
    start() {
      if (timer) return;
      stopped = false;
      timer = setInterval(
        () => void sweep().catch((err: unknown) => log.error({ err }, 'the daily delivery audit failed')),
        SWEEP_MS,
      );
      timer.unref();
    },
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
