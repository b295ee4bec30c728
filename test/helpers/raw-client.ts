// A bare WebSocket client for protocol-level assertions (NOTICE, CLOSED, malformed frames) that nostr-tools'
// Relay deliberately hides. It keeps every message it gets and lets a test wait for the next one that matches.
import { WebSocket } from 'ws';
import { rawText } from '../../src/lib/ws-text.js';

export type Message = [string, ...unknown[]];

export class RawClient {
  readonly received: Message[] = [];
  private waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(rawText(data)) as Message;
      this.received.push(m);
      const i = this.waiters.findIndex((w) => w.match(m));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        w?.resolve(m);
      }
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
    });
  }

  static async connect(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    const client = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** The next message (from now on, or already received and not yet consumed by `next`) that matches. */
  next(match: (m: Message) => boolean, timeoutMs = 5000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.received.slice(-5))}`),
          ),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  nextOfType(type: string, timeoutMs?: number): Promise<Message> {
    return this.next((m) => m[0] === type, timeoutMs);
  }

  /** Sends an EVENT and returns the OK answer for it: [accepted, message]. */
  async publish(ev: { id: string }): Promise<[boolean, string]> {
    const answer = this.next((m) => m[0] === 'OK' && m[1] === ev.id);
    this.send(['EVENT', ev]);
    const m = await answer;
    return [m[2] as boolean, m[3] as string];
  }

  /** Sends a REQ, collects the stored events up to EOSE (or the CLOSED that refuses it), then CLOSEs it. */
  async req(subId: string, ...filters: unknown[]): Promise<{ events: unknown[]; closed?: string }> {
    const r = await this.subscribe(subId, ...filters);
    if (r.closed === undefined) this.send(['CLOSE', subId]);
    return r;
  }

  /** Sends a REQ and collects the stored events up to EOSE; the subscription stays open for live events. */
  async subscribe(subId: string, ...filters: unknown[]): Promise<{ events: unknown[]; closed?: string }> {
    const events: unknown[] = [];
    const done = new Promise<string | undefined>((resolve) => {
      const onMessage = (data: unknown) => {
        const m = JSON.parse(String(data)) as Message;
        if (m[1] !== subId) return;
        if (m[0] === 'EVENT') events.push(m[2]);
        if (m[0] === 'EOSE' || m[0] === 'CLOSED') {
          this.ws.off('message', onMessage);
          resolve(m[0] === 'CLOSED' ? (m[2] as string) : undefined);
        }
      };
      this.ws.on('message', onMessage);
    });
    this.send(['REQ', subId, ...filters]);
    const closed = await done;
    return closed === undefined ? { events } : { events, closed };
  }

  close(): void {
    this.ws.close();
  }
}
