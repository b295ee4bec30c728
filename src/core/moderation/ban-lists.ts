// Relay bans (NIP-86): banned pubkeys and event ids, kept in memory so admission's `checkBans` stage costs two
// set lookups. The sets are loaded from relay_bans at start, reloaded after every change made here, reloaded
// in every other process when one announces a change over Redis pub/sub (when Redis is configured), and
// reloaded once a minute as a safety net. The allow list is recorded (NIP-86 allowpubkey) and lifts a ban; this
// relay is open to everyone, so the allow list does not restrict who may publish.
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import type { NostrEvent } from '../../nips/nip01.js';
import { rejection, type Rejection } from '../../nips/result.js';
import {
  deleteBan,
  listBans,
  putBan,
  removeBannedEvent,
  restoreBannedEvent,
  type BanKind,
  type BanRecord,
} from '../../store/bans.js';
import { redisChannel } from '../../store/pubsub.js';
import type { Redis } from '../../store/redis.js';

export type { BanKind };

export interface BansDeps {
  readonly db: Knex;
  readonly log: Logger;
  /** With Redis, changes reach every process at once (channel `<prefix>bans`). */
  readonly redis?: Redis | undefined;
  readonly redisPrefix?: string;
  readonly reloadMs?: number;
}

export interface Bans {
  /** The admission stage: a `blocked:` rejection for a banned pubkey or event, else undefined. */
  check(ev: Pick<NostrEvent, 'id' | 'pubkey'>): Rejection | undefined;
  load(): Promise<void>;
  banPubkey(pubkey: string, reason: string | undefined, actor: string): Promise<void>;
  unbanPubkey(pubkey: string, actor: string): Promise<boolean>;
  allowPubkey(pubkey: string, reason: string | undefined, actor: string): Promise<void>;
  unallowPubkey(pubkey: string, actor: string): Promise<boolean>;
  banEvent(eventId: string, reason: string | undefined, actor: string): Promise<void>;
  allowEvent(eventId: string, actor: string): Promise<boolean>;
  list(kind: BanKind): Promise<BanRecord[]>;
  close(): Promise<void>;
}

export async function createBans(deps: BansDeps): Promise<Bans> {
  const { db, log } = deps;
  let pubkeys = new Set<string>();
  let events = new Set<string>();
  const bridge =
    deps.redis &&
    redisChannel(deps.redis, `${deps.redisPrefix ?? ''}bans`, (err) =>
      log.error({ err }, 'ban change announcement failed'),
    );

  async function load(): Promise<void> {
    const rows = await listBans(db);
    pubkeys = new Set(rows.filter((r) => r.kind === 'pubkey').map((r) => r.value));
    events = new Set(rows.filter((r) => r.kind === 'event').map((r) => r.value));
  }
  const reload = () => {
    load().catch((err: unknown) => log.error({ err }, 'reloading relay bans failed'));
  };
  /** After a change: this process reloads before answering, the others when they hear of it. */
  async function changed(): Promise<void> {
    await load();
    bridge?.publish('changed');
  }

  await load();
  bridge?.onMessage(reload);
  const timer = setInterval(reload, deps.reloadMs ?? 60_000);
  timer.unref();

  return {
    check(ev) {
      if (pubkeys.has(ev.pubkey)) return rejection('blocked', 'this pubkey is banned from this relay');
      if (events.has(ev.id)) return rejection('blocked', 'this event is banned from this relay');
      return undefined;
    },
    load,
    async banPubkey(pubkey, reason, actor) {
      await deleteBan(db, 'allow', pubkey, actor);
      await putBan(db, 'pubkey', pubkey, reason, actor);
      await changed();
    },
    async unbanPubkey(pubkey, actor) {
      const had = await deleteBan(db, 'pubkey', pubkey, actor);
      await changed();
      return had;
    },
    async allowPubkey(pubkey, reason, actor) {
      await deleteBan(db, 'pubkey', pubkey, actor);
      await putBan(db, 'allow', pubkey, reason, actor);
      await changed();
    },
    async unallowPubkey(pubkey, actor) {
      const had = await deleteBan(db, 'allow', pubkey, actor);
      await changed();
      return had;
    },
    async banEvent(eventId, reason, actor) {
      await putBan(db, 'event', eventId, reason, actor);
      await removeBannedEvent(db, eventId);
      await changed();
    },
    async allowEvent(eventId, actor) {
      const had = await deleteBan(db, 'event', eventId, actor);
      if (had) await restoreBannedEvent(db, eventId);
      await changed();
      return had;
    },
    list: (kind) => listBans(db, kind),
    async close() {
      clearInterval(timer);
      await bridge?.close();
    },
  };
}
