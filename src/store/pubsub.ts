// Fan-out across processes over Redis pub/sub. Each message carries the sending instance's id, so a process
// ignores its own broadcasts (it has already delivered them locally).
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { FanOutBridge } from '../core/fanout.js';

export function redisFanOutBridge(redis: Redis, channel: string, onError: (err: unknown) => void): FanOutBridge {
  const instance = randomBytes(6).toString('hex');
  const sub = redis.duplicate();
  const handlers: ((json: string) => void)[] = [];
  sub.on('message', (_channel: string, message: string) => {
    const sep = message.indexOf('|');
    if (sep < 0 || message.slice(0, sep) === instance) return;
    const json = message.slice(sep + 1);
    for (const h of handlers) h(json);
  });
  sub.subscribe(channel).catch(onError);
  return {
    publish(json) {
      redis.publish(channel, `${instance}|${json}`).catch(onError);
    },
    onMessage(handler) {
      handlers.push(handler);
    },
    async close() {
      sub.disconnect();
    },
  };
}
