// Messages between processes over Redis pub/sub: the live fan-out of events, and cache invalidations. Each
// message carries the sending instance's id, so a process ignores its own broadcasts (it has already acted on
// them locally). A connection in subscriber mode can run no other command, so the channels of one Redis client
// share ONE subscriber connection (a process holds two connections to Redis, however many channels it uses).
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** One named channel shared by every process; `publish` reaches all the others, not this one. */
export interface Channel {
  publish(text: string): void;
  onMessage(handler: (text: string) => void): void;
  close(): Promise<void>;
}

type Route = (message: string) => void;

interface Subscriber {
  readonly conn: Redis;
  /** Per channel name, the channels of this process listening on it. */
  readonly routes: Map<string, Set<Route>>;
}

const subscribers = new WeakMap<Redis, Subscriber>();

function subscriberOf(redis: Redis): Subscriber {
  const existing = subscribers.get(redis);
  if (existing) return existing;
  // Subscribing again after a reconnection is done here, below, not by ioredis (autoResubscribe), which would only
  // repeat the SUBSCRIBEs that had succeeded: one way, covering every channel.
  const conn = redis.duplicate({ autoResubscribe: false });
  // Its connection errors are the client's: reported where the client's are (store/redis.ts), not left unheard.
  conn.on('error', (err: Error) => redis.emit('error', err));
  const routes = new Map<string, Set<Route>>();
  conn.on('message', (channel: string, message: string) => {
    for (const route of routes.get(channel) ?? []) route(message);
  });
  // Each time the connection is ready (the first time, and after every reconnection), every channel is subscribed,
  // including one whose SUBSCRIBE failed while Redis was away (its retries used up), which would otherwise stay deaf
  // for good. The channels made before the first connection are subscribed only here (subscribeWhenReady).
  conn.on('ready', () => {
    if (routes.size > 0) conn.subscribe(...routes.keys()).catch(() => undefined); // reported through 'error'
  });
  const created = { conn, routes };
  subscribers.set(redis, created);
  return created;
}

/**
 * SUBSCRIBEs `channel` now if the subscriber connection is ready; otherwise its 'ready' handler (subscriberOf) does,
 * and a connection not yet opened (lazyConnect) is opened. A SUBSCRIBE queued before the connection is ready would
 * wait there under the command timeout: at a start-up that holds the event loop longer than that, it failed as "timed
 * out" although ioredis still sent it and it took effect (an ERROR line at each start of a loaded machine, for nothing).
 */
function subscribeWhenReady(conn: Redis, channel: string, onError: (err: unknown) => void): void {
  if (conn.status === 'ready') conn.subscribe(channel).catch(onError);
  else if (conn.status === 'wait') conn.connect().catch(() => undefined); // reported through 'error'
}

export function redisChannel(redis: Redis, channel: string, onError: (err: unknown) => void): Channel {
  const instance = randomBytes(6).toString('hex');
  const handlers: ((text: string) => void)[] = [];
  const route: Route = (message) => {
    const sep = message.indexOf('|');
    if (sep < 0 || message.slice(0, sep) === instance) return;
    const text = message.slice(sep + 1);
    for (const h of handlers) h(text);
  };
  const sub = subscriberOf(redis);
  let listeners = sub.routes.get(channel);
  if (!listeners) {
    sub.routes.set(channel, (listeners = new Set()));
    subscribeWhenReady(sub.conn, channel, onError);
  }
  listeners.add(route);
  let closed = false;
  return {
    publish(text) {
      redis.publish(channel, `${instance}|${text}`).catch(onError);
    },
    onMessage(handler) {
      handlers.push(handler);
    },
    async close() {
      if (closed) return;
      closed = true;
      const set = sub.routes.get(channel);
      set?.delete(route);
      if (set && set.size === 0) {
        sub.routes.delete(channel);
        if (sub.routes.size > 0) await sub.conn.unsubscribe(channel).catch(onError);
      }
      if (sub.routes.size === 0 && subscribers.get(redis) === sub) {
        subscribers.delete(redis);
        sub.conn.disconnect();
      }
    },
  };
}
