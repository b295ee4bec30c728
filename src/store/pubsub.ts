// Messages between processes over Redis pub/sub: the live fan-out of events, and cache invalidations. Each
// message carries the sending instance's id, so a process ignores its own broadcasts (it has already acted on
// them locally).
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** One named channel shared by every process; `publish` reaches all the others, not this one. */
export interface Channel {
  publish(text: string): void;
  onMessage(handler: (text: string) => void): void;
  close(): Promise<void>;
}

export function redisChannel(redis: Redis, channel: string, onError: (err: unknown) => void): Channel {
  const instance = randomBytes(6).toString('hex');
  const sub = redis.duplicate();
  const handlers: ((text: string) => void)[] = [];
  sub.on('message', (_channel: string, message: string) => {
    const sep = message.indexOf('|');
    if (sep < 0 || message.slice(0, sep) === instance) return;
    const text = message.slice(sep + 1);
    for (const h of handlers) h(text);
  });
  sub.subscribe(channel).catch(onError);
  return {
    publish(text) {
      redis.publish(channel, `${instance}|${text}`).catch(onError);
    },
    onMessage(handler) {
      handlers.push(handler);
    },
    async close() {
      sub.disconnect();
    },
  };
}
