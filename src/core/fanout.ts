// Fan-out of accepted events to live subscribers. Local listeners hear every event published in this process
// at once; with a bridge (Redis pub/sub) events published by other processes are delivered too, and ours are
// sent to them. The event travels with its JSON text, serialised once, since every subscriber sends the same bytes.
import type { NostrEvent } from '../nips/nip01.js';

export interface Broadcast {
  readonly event: NostrEvent;
  readonly json: string;
}

export type Listener = (b: Broadcast) => void;

/** Carries broadcasts between processes; store/pubsub.ts implements it over Redis. */
export interface FanOutBridge {
  publish(json: string): void;
  onMessage(handler: (json: string) => void): void;
  close(): Promise<void>;
}

export interface FanOut {
  publish(event: NostrEvent): void;
  subscribe(listener: Listener): () => void;
  close(): Promise<void>;
}

export function createFanOut(bridge?: FanOutBridge, onListenerError?: (err: unknown) => void): FanOut {
  const listeners = new Set<Listener>();
  const deliver = (b: Broadcast): void => {
    for (const l of listeners) {
      try {
        l(b);
      } catch (err) {
        onListenerError?.(err);
      }
    }
  };
  bridge?.onMessage((json) => {
    let event: NostrEvent;
    try {
      event = JSON.parse(json) as NostrEvent;
    } catch {
      return;
    }
    deliver({ event, json });
  });
  return {
    publish(event) {
      const json = JSON.stringify(event);
      deliver({ event, json });
      bridge?.publish(json);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      listeners.clear();
      await bridge?.close();
    },
  };
}
