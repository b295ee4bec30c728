// A stand-in for ExtensionPay on 127.0.0.1 (EXTENSIONPAY_URL): `GET /extension/{id}/api/v2/user?api_key=KEY`
// answers the user object ExtPay.js reads (paid, paidAt, email, installedAt, trialStartedAt, plan,
// subscriptionStatus, subscriptionCancelAt), an unknown key a 404, and `down` makes it answer 503 (as a broken
// upstream would) so tests can check that nobody is downgraded.
import { listenLoopback } from './loopback-server.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ExtPayUserShape {
  paid: boolean;
  paidAt: string | null;
  email: string | null;
  installedAt: string;
  trialStartedAt: string | null;
  plan: {
    unitAmountCents: number;
    currency: string;
    nickname: string | null;
    interval: 'month' | 'year' | 'once';
    intervalCount: number | null;
  } | null;
  subscriptionStatus?: 'active' | 'past_due' | 'canceled';
  subscriptionCancelAt?: string | null;
}

export interface ExtPayStandIn {
  readonly url: string;
  readonly extensionId: string;
  /** api_key → the user ExtensionPay has. */
  readonly users: Map<string, ExtPayUserShape>;
  /** Requests received, by key (the test can see a sync happened). */
  readonly reads: string[];
  down: boolean;
  close(): Promise<void>;
}

const day = 86_400_000;

/** A user who paid `daysAgo` days ago for the plan with that nickname, monthly unless said otherwise. */
export function paidUser(nickname: string, daysAgo = 10, over: Partial<ExtPayUserShape> = {}): ExtPayUserShape {
  const paidAt = new Date(Date.now() - daysAgo * day).toISOString();
  return {
    paid: true,
    paidAt,
    email: 'alice@example.com',
    installedAt: new Date(Date.now() - (daysAgo + 5) * day).toISOString(),
    trialStartedAt: null,
    plan: {
      unitAmountCents: nickname === 'advanced' ? 999 : 499,
      currency: 'usd',
      nickname,
      interval: 'month',
      intervalCount: 1,
    },
    subscriptionStatus: 'active',
    subscriptionCancelAt: null,
    ...over,
  };
}

export async function startExtPayStandIn(t: Teardown, extensionId = 'nostrx-test'): Promise<ExtPayStandIn> {
  const users = new Map<string, ExtPayUserShape>();
  const reads: string[] = [];
  const state = { down: false };
  const server = await listenLoopback(t, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://extpay.standin');
    const key = url.searchParams.get('api_key') ?? '';
    reads.push(key);
    if (state.down) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('Service Unavailable');
      return;
    }
    const user = url.pathname === `/extension/${extensionId}/api/v2/user` ? users.get(key) : undefined;
    if (!user) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('user not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(user));
  });
  const standIn: ExtPayStandIn = {
    url: server.url,
    extensionId,
    users,
    reads,
    get down() {
      return state.down;
    },
    set down(v: boolean) {
      state.down = v;
    },
    close: () => server.close(),
  };
  return standIn;
}
