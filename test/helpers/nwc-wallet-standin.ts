// A Lightning wallet that speaks Nostr Wallet Connect (NIP-47) through a relay on 127.0.0.1, standing in for the
// operator's wallet in the Lightning tests. It has its own keys (the wallet service's, the connection's client secret
// it hands out in its NWC URL, and a node key), publishes its info event (kind 13194), answers make_invoice and
// lookup_invoice requests (kind 23194 → 23195, NIP-44 or NIP-04 as the client chose) with real BOLT11 invoices signed
// with the node key (the `bolt11` package), and sends a payment_received notification (kind 23197 / 23196) when the
// test "pays" an invoice. Written with nostr-tools only, independently of the SDK the service uses.
import { createHash, randomBytes } from 'node:crypto';
import bolt11 from 'bolt11';
import * as nip04 from 'nostr-tools/nip04';
import * as nip44 from 'nostr-tools/nip44';
import { finalizeEvent, generateSecretKey, getPublicKey, type NostrEvent } from 'nostr-tools/pure';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { WebSocket } from 'ws';

useWebSocketImplementation(WebSocket);

interface Teardown {
  teardown(fn: () => unknown): void;
}

type Encryption = 'nip44_v2' | 'nip04';

/** One invoice as NIP-47 describes a transaction (amounts in msats, times in seconds). */
interface WalletInvoice {
  type: 'incoming';
  state: 'pending' | 'settled' | 'expired';
  invoice: string;
  description: string;
  description_hash: string;
  preimage: string;
  payment_hash: string;
  amount: number;
  fees_paid: number;
  created_at: number;
  expires_at: number;
  settled_at?: number;
}

interface WalletRequest {
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly encryption: Encryption;
}

export interface WalletStandInOptions {
  /** The encryptions the wallet offers in its info event (the SDK picks nip44_v2 when offered). */
  readonly encryptions?: readonly Encryption[];
}

export interface WalletStandIn {
  /** The connection URI the operator would paste into NWC_URL. */
  readonly nwcUrl: string;
  readonly walletPubkey: string;
  /** The node key's public key: what a BOLT11 decoder recovers from the signature. */
  readonly nodePubkey: string;
  readonly invoices: Map<string, WalletInvoice>;
  readonly requests: WalletRequest[];
  /** Answer every request with this NIP-47 error (undefined: answer normally). */
  failWith: { code: string; message: string } | undefined;
  /** Take requests but never answer them (a wallet that hangs). */
  silent: boolean;
  /** Marks the invoice paid now; sends payment_received unless `notify` is false (a notification lost). */
  pay(paymentHash: string, opts?: { notify?: boolean }): Promise<void>;
  /** Sends payment_received for an invoice already paid (a notification delivered again). */
  notify(paymentHash: string): Promise<void>;
  /** Disconnects the wallet service from the relay, and connects it again. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

const nowS = () => Math.floor(Date.now() / 1000);
const sha256hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function startWalletStandIn(
  t: Teardown,
  relayUrl: string,
  opts: WalletStandInOptions = {},
): Promise<WalletStandIn> {
  const walletSk = generateSecretKey();
  const walletPubkey = getPublicKey(walletSk);
  const clientSk = generateSecretKey();
  const clientPubkey = getPublicKey(clientSk);
  const nodeKey = randomBytes(32).toString('hex');
  const encryptions = opts.encryptions ?? ['nip44_v2', 'nip04'];
  const invoices = new Map<string, WalletInvoice>();
  const requests: WalletRequest[] = [];
  let relay: Relay | undefined;
  let nodePubkey = '';

  const seal = (text: string, encryption: Encryption) =>
    encryption === 'nip04'
      ? nip04.encrypt(walletSk, clientPubkey, text)
      : nip44.encrypt(text, nip44.getConversationKey(walletSk, clientPubkey));
  const open = (ev: NostrEvent, encryption: Encryption) =>
    encryption === 'nip04'
      ? nip04.decrypt(walletSk, clientPubkey, ev.content)
      : nip44.decrypt(ev.content, nip44.getConversationKey(walletSk, clientPubkey));

  const publish = async (ev: NostrEvent) => {
    if (!relay) throw new Error('the wallet stand-in is stopped');
    await relay.publish(ev);
  };

  /** What lookup_invoice shows now: an unpaid invoice past its expiry is expired. */
  const current = (inv: WalletInvoice): WalletInvoice =>
    inv.state === 'pending' && nowS() >= inv.expires_at ? { ...inv, state: 'expired' } : inv;

  function makeInvoice(params: Record<string, unknown>): WalletInvoice {
    const amount = Number(params.amount);
    const description = typeof params.description === 'string' ? params.description : '';
    const expiry = typeof params.expiry === 'number' ? params.expiry : 86_400;
    const preimage = randomBytes(32);
    const paymentHash = sha256hex(preimage);
    const created = nowS();
    const signed = bolt11.sign(
      bolt11.encode({
        millisatoshis: String(amount),
        timestamp: created,
        tags: [
          { tagName: 'payment_hash', data: paymentHash },
          { tagName: 'payment_secret', data: randomBytes(32).toString('hex') },
          { tagName: 'description', data: description },
          { tagName: 'expire_time', data: expiry },
        ],
      }),
      nodeKey,
    );
    nodePubkey = signed.payeeNodeKey ?? '';
    const inv: WalletInvoice = {
      type: 'incoming',
      state: 'pending',
      invoice: signed.paymentRequest ?? '',
      description,
      description_hash: '',
      preimage: preimage.toString('hex'),
      payment_hash: paymentHash,
      amount,
      fees_paid: 0,
      created_at: created,
      expires_at: created + expiry,
    };
    invoices.set(paymentHash, inv);
    return inv;
  }

  /** The public view of a transaction: the preimage is known to the payer only once it is paid. */
  const view = (inv: WalletInvoice) => ({ ...inv, preimage: inv.state === 'settled' ? inv.preimage : '' });

  function answer(
    method: string,
    params: Record<string, unknown>,
  ): { result_type: string; result?: unknown; error?: { code: string; message: string } } {
    if (stand.failWith) return { result_type: method, error: stand.failWith };
    switch (method) {
      case 'make_invoice':
        if (!(Number(params.amount) > 0))
          return { result_type: method, error: { code: 'OTHER', message: 'amount must be positive' } };
        return { result_type: method, result: view(makeInvoice(params)) };
      case 'lookup_invoice': {
        const inv = invoices.get(String(params.payment_hash));
        if (!inv) return { result_type: method, error: { code: 'NOT_FOUND', message: 'no such invoice' } };
        return { result_type: method, result: view(current(inv)) };
      }
      case 'get_info':
        return {
          result_type: method,
          result: {
            alias: 'stand-in',
            color: '#000000',
            pubkey: nodePubkey,
            network: 'mainnet',
            block_height: 1,
            block_hash: '00',
            methods: ['make_invoice', 'lookup_invoice', 'get_info'],
            notifications: ['payment_received'],
          },
        };
      default:
        return {
          result_type: method,
          error: { code: 'NOT_IMPLEMENTED', message: `${method} is not supported by this connection` },
        };
    }
  }

  async function onRequest(ev: NostrEvent): Promise<void> {
    const encryption: Encryption =
      ev.tags.find((tag) => tag[0] === 'encryption')?.[1] === 'nip44_v2' ? 'nip44_v2' : 'nip04';
    const request = JSON.parse(open(ev, encryption)) as { method: string; params?: Record<string, unknown> };
    requests.push({ method: request.method, params: request.params ?? {}, encryption });
    if (stand.silent) return;
    const reply = answer(request.method, request.params ?? {});
    await publish(
      finalizeEvent(
        {
          kind: 23195,
          created_at: nowS(),
          tags: [
            ['p', clientPubkey],
            ['e', ev.id],
          ],
          content: seal(JSON.stringify(reply), encryption),
        },
        walletSk,
      ),
    );
  }

  /** The encryption the client uses (the last request's), for notifications. */
  const clientEncryption = (): Encryption =>
    requests.at(-1)?.encryption ?? (encryptions.includes('nip44_v2') ? 'nip44_v2' : 'nip04');

  async function sendNotification(inv: WalletInvoice): Promise<void> {
    const encryption = clientEncryption();
    const content = seal(
      JSON.stringify({ notification_type: 'payment_received', notification: view(inv) }),
      encryption,
    );
    await publish(
      finalizeEvent(
        { kind: encryption === 'nip04' ? 23196 : 23197, created_at: nowS(), tags: [['p', clientPubkey]], content },
        walletSk,
      ),
    );
  }

  const stand: WalletStandIn = {
    nwcUrl: `nostr+walletconnect://${walletPubkey}?relay=${encodeURIComponent(relayUrl)}&secret=${Buffer.from(clientSk).toString('hex')}`,
    walletPubkey,
    get nodePubkey() {
      return nodePubkey;
    },
    invoices,
    requests,
    failWith: undefined,
    silent: false,
    async pay(paymentHash, payOpts = {}) {
      const inv = invoices.get(paymentHash);
      if (!inv) throw new Error(`the wallet has no invoice ${paymentHash}`);
      inv.state = 'settled';
      inv.settled_at = nowS();
      if (payOpts.notify !== false) await sendNotification(inv);
    },
    async notify(paymentHash) {
      const inv = invoices.get(paymentHash);
      if (!inv) throw new Error(`the wallet has no invoice ${paymentHash}`);
      await sendNotification(inv);
    },
    async start() {
      if (relay) return;
      const r = await Relay.connect(relayUrl);
      relay = r;
      r.subscribe([{ kinds: [23194], '#p': [walletPubkey], authors: [clientPubkey] }], {
        onevent: (ev) => void onRequest(ev).catch(() => undefined),
      });
      const info = finalizeEvent(
        {
          kind: 13194,
          created_at: nowS(),
          tags: [
            ['encryption', encryptions.join(' ')],
            ['notifications', 'payment_received'],
          ],
          content: 'make_invoice lookup_invoice get_info notifications',
        },
        walletSk,
      );
      await r.publish(info);
    },
    async stop() {
      const r = relay;
      relay = undefined;
      r?.close();
    },
  };
  await stand.start();
  t.teardown(() => stand.stop());
  return stand;
}
