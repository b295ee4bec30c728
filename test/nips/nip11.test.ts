import t from 'tap';
import * as nip11 from '../../src/nips/nip11.js';
import type { RelayInfoInput } from '../../src/nips/nip11.js';

const input: RelayInfoInput = {
  name: 'NostrX',
  description: 'paid relay',
  supportedNips: [42, 1, 11, 9, 1, 40],
  software: 'https://github.com/nostrx/relay',
  version: '0.1.0',
  limitation: {
    maxMessageLength: 131072,
    maxSubscriptions: 20,
    maxLimit: 500,
    maxSubIdLength: 64,
    maxEventTags: 2000,
    maxContentLength: 65536,
    authRequired: false,
    paymentRequired: true,
    restrictedWrites: true,
    createdAtLowerLimit: 94608000,
    createdAtUpperLimit: 900,
    defaultLimit: 100,
  },
};

t.test('buildInfoDocument maps the input onto NIP-11 field names and leaves absent options out', async (t) => {
  const doc = nip11.buildInfoDocument(input);
  t.same(doc, {
    name: 'NostrX',
    description: 'paid relay',
    supported_nips: [1, 9, 11, 40, 42],
    software: 'https://github.com/nostrx/relay',
    version: '0.1.0',
    limitation: {
      max_message_length: 131072,
      max_subscriptions: 20,
      max_limit: 500,
      max_subid_length: 64,
      max_event_tags: 2000,
      max_content_length: 65536,
      auth_required: false,
      payment_required: true,
      restricted_writes: true,
      created_at_lower_limit: 94608000,
      created_at_upper_limit: 900,
      default_limit: 100,
    },
  });
  t.same(Object.keys(doc), ['name', 'description', 'supported_nips', 'software', 'version', 'limitation']);
  t.same(
    Object.keys(nip11.buildInfoDocument({ ...input, subscriptionFees: [] })),
    Object.keys(doc),
    'no fees object for an empty list',
  );
});

t.test('buildInfoDocument includes the optional fields and subscription fees when given', async (t) => {
  const doc = nip11.buildInfoDocument({
    ...input,
    pubkey: 'a'.repeat(64),
    contact: 'mailto:ops@nostrx.example',
    icon: 'https://nostrx.example/icon.png',
    subscriptionFees: [{ amount: 5000000, unit: 'msats', period: 2592000 }],
    paymentsUrl: 'https://nostrx.example/pay',
  });
  t.equal(doc.pubkey, 'a'.repeat(64));
  t.equal(doc.contact, 'mailto:ops@nostrx.example');
  t.equal(doc.icon, 'https://nostrx.example/icon.png');
  t.same(doc.fees, { subscription: [{ amount: 5000000, unit: 'msats', period: 2592000 }] });
  t.equal(doc.payments_url, 'https://nostrx.example/pay');
});

t.test('corsHeaders allow any origin with the headers and methods NIP-11 and NIP-86 need', async (t) => {
  t.same(nip11.corsHeaders, {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Headers': 'Accept, Authorization, Content-Type',
    'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  });
  t.ok(Object.isFrozen(nip11.corsHeaders));
});

t.test('contentType is the NIP-11 media type', async (t) => {
  t.equal(nip11.contentType, 'application/nostr+json');
});
