// Fan-out of accepted events to live subscribers. Local listeners hear every event published in this process
// at once; with a bridge (Redis pub/sub) events published by other processes are delivered too, and ours are
// sent to them. The event travels with its JSON text, serialised once, since every subscriber sends the same bytes.
// The events published in one run of callbacks (a group commit's, typically) cross the bridge as ONE message, one
// JSON text a line (JSON.stringify escapes newlines inside strings): at saturation a commit of ~70 events costs
// Redis one PUBLISH, not 70, and every process reads one message, its own echo included.
import type { NostrEvent } from '../../nips/nip01.js';

interface Broadcast {
  readonly event: NostrEvent;
  readonly json: string;
}

type Listener = (b: Broadcast) => void;

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

/** A bridge message is sent once its texts pass this many characters, so a message stays small for Redis. */
const MESSAGE_CHARS = 256 * 1024;

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
  bridge?.onMessage((message) => {
    for (const json of message.split('\n')) {
      let event: NostrEvent;
      try {
        event = JSON.parse(json) as NostrEvent;
      } catch {
        continue;
      }
      deliver({ event, json });
    }
  });

  let outgoing: string[] = [];
  let outgoingChars = 0;
  const send = (): void => {
    if (outgoing.length === 0) return;
    bridge?.publish(outgoing.join('\n'));
    outgoing = [];
    outgoingChars = 0;
  };
  // After the current run of promise callbacks, so every event its commit resolved goes in the same message.
  const toBridge = (json: string): void => {
    if (outgoing.length === 0) process.nextTick(send);
    outgoing.push(json);
    outgoingChars += json.length;
    if (outgoingChars >= MESSAGE_CHARS) send();
  };

  return {
    publish(event) {
      const json = JSON.stringify(event);
      deliver({ event, json });
      if (bridge) toBridge(json);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      listeners.clear();
      send();
      await bridge?.close();
    },
  };
}
