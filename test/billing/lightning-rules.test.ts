// The rules of Lightning billing that need no wallet: where a paid period goes, what the paid periods say at a given
// moment, LIGHTNING_PRICES, the checks on NWC_URL (whose errors never repeat the secret) and on the wallet's answers.
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';
import { lightningPrices } from '../../src/core/billing/lightning.js';
import {
  cycleMs,
  lateLookup,
  nextLookup,
  placePeriod,
  stateAt,
  type PaidPeriod,
} from '../../src/core/billing/lightning-periods.js';
import { parseTransaction } from '../../src/core/billing/nwc-wallet.js';

const DAY = 86_400_000;
const t0 = new Date('2030-01-01T00:00:00Z').getTime();
const at = (days: number) => new Date(t0 + days * DAY);

function period(hash: string, from: number, to: number, over: Partial<PaidPeriod> = {}): PaidPeriod {
  return {
    paymentHash: hash,
    subscriptionKey: hash,
    planCode: 'premium',
    billingCycle: 'monthly',
    amountSats: 15000,
    start: at(from),
    end: at(to),
    ...over,
  };
}

t.test(
  'placePeriod: now when nothing runs, after the paid time otherwise, in the same run for the same plan',
  async (t) => {
    t.same(placePeriod(at(0), [], { paymentHash: 'a', planCode: 'premium', billingCycle: 'monthly' }), {
      start: at(0),
      end: at(30),
      subscriptionKey: 'a',
    });
    const running = [period('a', -10, 20)];
    t.same(placePeriod(at(0), running, { paymentHash: 'b', planCode: 'premium', billingCycle: 'monthly' }), {
      start: at(20),
      end: at(50),
      subscriptionKey: 'a',
    });
    t.same(placePeriod(at(0), running, { paymentHash: 'c', planCode: 'advanced', billingCycle: 'monthly' }), {
      start: at(20),
      end: at(50),
      subscriptionKey: 'c',
    });
    t.same(placePeriod(at(0), running, { paymentHash: 'd', planCode: 'premium', billingCycle: 'yearly' }), {
      start: at(20),
      end: at(385),
      subscriptionKey: 'a',
    });
    const queued = [...running, period('c', 20, 50, { subscriptionKey: 'c', planCode: 'advanced' })];
    t.same(
      placePeriod(at(0), queued, { paymentHash: 'e', planCode: 'advanced', billingCycle: 'monthly' }).subscriptionKey,
      'c',
      'extends the last run',
    );
    t.same(placePeriod(at(0), queued, { paymentHash: 'f', planCode: 'premium', billingCycle: 'monthly' }), {
      start: at(50),
      end: at(80),
      subscriptionKey: 'f',
    });
    t.same(
      placePeriod(at(30), [period('a', -10, 20)], { paymentHash: 'g', planCode: 'premium', billingCycle: 'monthly' })
        .start,
      at(30),
      'an ended period is not extended',
    );
    t.equal(cycleMs.monthly, 30 * DAY);
    t.equal(cycleMs.yearly, 365 * DAY);
  },
);

t.test('stateAt: the run covering now, and the active subscription that is over', async (t) => {
  const periods = [
    period('a', 0, 30),
    period('b', 30, 60, { subscriptionKey: 'a' }),
    period('c', 60, 90, { planCode: 'advanced', subscriptionKey: 'c', amountSats: 30000 }),
  ];
  t.match(stateAt(at(10), periods, undefined), {
    current: { key: 'a', start: at(0), end: at(60), planCode: 'premium' },
    ended: undefined,
  });
  t.match(stateAt(at(10), periods, 'a'), { current: { key: 'a' }, ended: undefined });
  t.match(stateAt(at(60), periods, 'a'), {
    current: { key: 'c', planCode: 'advanced', amountSats: 30000, end: at(90) },
    ended: { key: 'a', at: at(60) },
  });
  t.same(stateAt(at(95), periods, 'c'), { current: undefined, ended: { key: 'c', at: at(90) } });
  t.same(stateAt(at(95), periods, undefined), { current: undefined });
  t.same(
    stateAt(at(5), [], 'z'),
    { current: undefined, ended: { key: 'z', at: at(5) } },
    'an active subscription nothing paid for ends now',
  );
});

t.test(
  'lookups: a doubling wait up to 30 s, one just after the expiry, then 1, 10 and 60 minutes after it',
  async (t) => {
    const expires = new Date(t0 + 600_000);
    t.same(nextLookup(0, expires, t0, 5000), new Date(t0 + 5000));
    t.same(nextLookup(2, expires, t0, 5000), new Date(t0 + 20_000));
    t.same(nextLookup(9, expires, t0, 5000), new Date(t0 + 30_000), 'at most 30 s');
    t.same(nextLookup(9, expires, t0 + 590_000, 5000), new Date(t0 + 601_000), 'just after the expiry');
    t.same(
      nextLookup(9, expires, t0 + 700_000, 5000),
      new Date(t0 + 730_000),
      'a wallet that does not answer is asked on',
    );
    t.same(lateLookup(expires, t0 + 600_000), new Date(t0 + 660_000));
    t.same(lateLookup(expires, t0 + 660_000), new Date(t0 + 1_200_000));
    t.same(lateLookup(expires, t0 + 1_300_000), new Date(t0 + 4_200_000));
    t.equal(lateLookup(expires, t0 + 4_200_000), null, 'then none');
  },
);

t.test('LIGHTNING_PRICES: plan → cycle → sats; bad entries stop the start, naming the key', async (t) => {
  const prices = lightningPrices(
    loadConfig({ LIGHTNING_PRICES: 'premium:monthly=15000, advanced:monthly=30000,premium:yearly=150000' })
      .lightningPrices,
  );
  t.same(
    [...(prices.get('premium') ?? [])],
    [
      ['monthly', 15000],
      ['yearly', 150000],
    ],
  );
  t.same([...(prices.get('advanced') ?? [])], [['monthly', 30000]]);
  for (const bad of [
    'premium=15000',
    'premium:weekly=1',
    'premium:monthly=0',
    'premium:monthly=1.5',
    'premium:monthly=100000000',
    'premium:monthly=-3',
  ]) {
    t.throws(
      () => loadConfig({ LIGHTNING_PRICES: bad }),
      { name: 'ConfigError', message: /^LIGHTNING_PRICES entries look like premium:monthly=15000/ },
      bad,
    );
  }
});

t.test('NWC_URL: checked at start, and its errors never show the value', async (t) => {
  const pub = 'b'.repeat(64);
  const secret = 'c0ffee'.repeat(10) + 'abcd';
  const good = `nostr+walletconnect://${pub}?relay=wss%3A%2F%2Frelay.example.com&secret=${secret}`;
  t.equal(loadConfig({ NWC_URL: good }).nwcUrl, good);
  for (const bad of [
    `nostr+walletconnect://${pub}?secret=${secret}`,
    `nostr+walletconnect://${pub}?relay=https%3A%2F%2Frelay.example.com&secret=${secret}`,
    `nostr+walletconnect://${pub}?relay=wss%3A%2F%2Frelay.example.com&secret=${secret.slice(1)}`,
    `nostr+walletconnect://${pub.toUpperCase()}?relay=wss%3A%2F%2Frelay.example.com&secret=${secret}`,
    `https://${pub}?relay=wss%3A%2F%2Frelay.example.com&secret=${secret}`,
  ]) {
    let err: unknown;
    try {
      loadConfig({ NWC_URL: bad });
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError, 'refused');
    t.match((err as Error).message, /^NWC_URL must look like nostr\+walletconnect:\/\//);
    t.notOk((err as Error).message.includes(secret.slice(1, 20)), 'the message does not show the secret');
  }
});

t.test("parseTransaction: the wallet's answer is checked field by field", async (t) => {
  const tx = {
    type: 'incoming',
    state: 'settled',
    invoice: 'lnbc1',
    payment_hash: 'a'.repeat(64),
    amount: 15_000_000,
    settled_at: 1_900_000_000,
    expires_at: 1_900_000_600,
  };
  t.same(parseTransaction(tx), {
    paymentHash: 'a'.repeat(64),
    invoice: 'lnbc1',
    amountMsats: 15_000_000,
    state: 'settled',
    settledAt: 1_900_000_000,
    expiresAt: 1_900_000_600,
  });
  t.match(parseTransaction({ ...tx, state: 'whatever', settled_at: 0 }), { state: undefined, settledAt: undefined });
  t.equal(parseTransaction({ ...tx, payment_hash: 'xyz' }), undefined);
  t.equal(parseTransaction({ ...tx, amount: '15000' }), undefined);
  t.equal(parseTransaction(null), undefined);
});
