// The operator's Lightning wallet, reached over Nostr Wallet Connect (NIP-47) with @getalby/sdk's NWCClient: make an
// invoice, look one up, and hear of payments received. Every answer is turned into a plain result here; nothing
// else in the service sees the SDK. The connection URI holds the secret that signs our requests: it is given to the
// SDK and never logged, and no error message built here contains it.
import { NWCClient, Nip47WalletError, type Nip47Notification, type Nip47Transaction } from '@getalby/sdk/nwc';
import { WebSocket } from 'ws';
import type { Logger } from '../../log.js';
import { withDeadline } from '../../lib/deadline.js';

/** An invoice as the wallet reports it (amounts in millisatoshis, times in seconds since the epoch). */
export interface WalletInvoice {
  readonly paymentHash: string;
  readonly invoice: string;
  readonly amountMsats: number;
  readonly state: 'pending' | 'settled' | 'expired' | 'failed' | 'accepted' | undefined;
  readonly settledAt: number | undefined;
  readonly expiresAt: number | undefined;
}

type WalletResult<T> =
  | { readonly ok: true; readonly value: T }
  /** unavailable: not reached, or no answer in time; rejected: the wallet answered an error (`code`, NIP-47's). */
  | {
      readonly ok: false;
      readonly kind: 'unavailable' | 'rejected';
      readonly code?: string | undefined;
      readonly reason: string;
    };

export interface LightningWallet {
  makeInvoice(req: {
    amountMsats: number;
    description: string;
    expirySeconds: number;
  }): Promise<WalletResult<WalletInvoice>>;
  lookupInvoice(paymentHash: string): Promise<WalletResult<WalletInvoice>>;
  /**
   * Calls `listener` with each payment the wallet says it received. Subscribing is retried with backoff until the
   * wallet's relay answers; once subscribed, the client reconnects by itself. Returns the function that stops it.
   */
  onPaymentReceived(listener: (payment: WalletInvoice) => void): () => void;
  close(): void;
}

export interface NwcWalletOptions {
  /** NWC_URL: nostr+walletconnect://<wallet pubkey>?relay=…&secret=… */
  readonly url: string;
  readonly timeoutMs: number;
  readonly log: Logger;
}

const hex64 = /^[0-9a-f]{64}$/;
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;

/** The wallet's transaction, checked field by field (a malformed answer is the wallet's fault: unavailable). */
export function parseTransaction(v: unknown): WalletInvoice | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const t = v as Partial<Record<keyof Nip47Transaction, unknown>>;
  if (
    typeof t.payment_hash !== 'string' ||
    !hex64.test(t.payment_hash) ||
    typeof t.invoice !== 'string' ||
    typeof t.amount !== 'number'
  )
    return undefined;
  const state =
    t.state === 'pending' ||
    t.state === 'settled' ||
    t.state === 'expired' ||
    t.state === 'failed' ||
    t.state === 'accepted'
      ? t.state
      : undefined;
  return {
    paymentHash: t.payment_hash,
    invoice: t.invoice,
    amountMsats: t.amount,
    state,
    settledAt: typeof t.settled_at === 'number' && t.settled_at > 0 ? t.settled_at : undefined,
    expiresAt: typeof t.expires_at === 'number' && t.expires_at > 0 ? t.expires_at : undefined,
  };
}

/** A request of NWCClient with our time limit: its public methods wait 60 s for an answer and print failures. */
type Execute = (
  method: string,
  params: object,
  valid: (r: Nip47Transaction) => boolean,
  timeouts: { replyTimeout: number; publishTimeout: number },
) => Promise<Nip47Transaction>;

export function createNwcWallet(opts: NwcWalletOptions): LightningWallet {
  const log = opts.log.child({ mod: 'nwc' });
  // The SDK opens its relay connections with the global WebSocket, which Node 20 lacks (Node 22 has one).
  const g = globalThis as { WebSocket?: unknown };
  if (g.WebSocket === undefined) g.WebSocket = WebSocket;
  const client = new NWCClient({
    nostrWalletConnectUrl: opts.url,
    requireSecret: true,
    logger: { debug: () => undefined },
  });
  // The method behind makeInvoice and lookupInvoice, with its time limits: the public ones keep a 60 s timer per
  // request after a failure and write each failure to the console, past our structured log. Pinned SDK version.
  const execute = (client as unknown as { executeNip47Request?: Execute }).executeNip47Request;
  if (typeof execute !== 'function')
    throw new Error('@getalby/sdk NWCClient has no executeNip47Request: this SDK version is not supported');
  let stopped = false;

  async function call(method: 'make_invoice' | 'lookup_invoice', params: object): Promise<WalletResult<WalletInvoice>> {
    const timeouts = { replyTimeout: opts.timeoutMs, publishTimeout: Math.min(opts.timeoutMs, 5000) };
    try {
      const answer = await withDeadline(
        (execute as Execute).call(client, method, params, (r) => Boolean(r.invoice), timeouts),
        opts.timeoutMs + 1000,
        () => new Error(`no answer in ${opts.timeoutMs} ms`),
      );
      const tx = parseTransaction(answer);
      if (!tx)
        return { ok: false, kind: 'unavailable', reason: `the wallet's ${method} answer is not a NIP-47 transaction` };
      return { ok: true, value: tx };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof Nip47WalletError)
        return { ok: false, kind: 'rejected', code: err.code, reason: `${err.code}: ${message}` };
      return { ok: false, kind: 'unavailable', reason: message };
    }
  }

  return {
    makeInvoice: (req) =>
      call('make_invoice', { amount: req.amountMsats, description: req.description, expiry: req.expirySeconds }),
    lookupInvoice: (paymentHash) => call('lookup_invoice', { payment_hash: paymentHash }),
    onPaymentReceived(listener) {
      let unsubscribe: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      let failures = 0;
      const onNotification = (n: Nip47Notification) => {
        if (n.notification_type !== 'payment_received') return;
        const tx = parseTransaction(n.notification);
        if (tx) listener(tx);
        else
          log.warn(
            { type: n.notification_type },
            'a payment_received notification without a valid transaction was ignored',
          );
      };
      const attempt = () => {
        timer = undefined;
        client.subscribeNotifications(onNotification, ['payment_received']).then(
          (stop) => {
            if (stopped) return stop();
            unsubscribe = stop;
            log.info({ failures }, 'listening to the wallet for payments');
          },
          (err: unknown) => {
            if (stopped) return;
            const delay = Math.min(FIRST_RETRY_MS * 2 ** failures++, MAX_RETRY_MS);
            log.warn(
              { why: err instanceof Error ? err.message : String(err), retryInMs: delay },
              'the wallet cannot be reached for payment notifications; retrying (pending invoices are still looked up)',
            );
            timer = setTimeout(attempt, delay);
            timer.unref();
          },
        );
      };
      attempt();
      return () => {
        if (timer) clearTimeout(timer);
        unsubscribe?.();
      };
    },
    close() {
      stopped = true;
      client.close();
    },
  };
}
