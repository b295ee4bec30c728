import t from 'tap';
import * as nip40 from '../../src/nips/nip40.js';

t.test('expiration reads the first expiration tag as unix seconds', async (t) => {
  t.equal(
    nip40.expiration({
      tags: [
        ['expiration', '1700000000'],
        ['expiration', '1'],
      ],
    }),
    1700000000,
  );
  t.equal(nip40.expiration({ tags: [['expiration', '0']] }), 0);
  t.equal(nip40.expiration({ tags: [] }), undefined);
});

t.test('expiration is undefined for a malformed tag', async (t) => {
  for (const value of ['', ' 1', '1.5', '-1', '1e9', '0x10', 'soon', '99999999999999999', '9999999999999999']) {
    t.equal(nip40.expiration({ tags: [['expiration', value]] }), undefined, JSON.stringify(value));
  }
  t.equal(nip40.expiration({ tags: [['expiration']] }), undefined, 'no value');
});

t.test('isExpired is true from the expiration second on, and never for ephemeral kinds', async (t) => {
  const ev = { kind: 1, tags: [['expiration', '1000']] };
  t.equal(nip40.isExpired(ev, 999), false, 'one second before');
  t.equal(nip40.isExpired(ev, 1000), true, 'at the expiration time');
  t.equal(nip40.isExpired(ev, 1001), true, 'after');
  t.equal(nip40.isExpired({ kind: 1, tags: [] }, 1001), false, 'no tag');
  t.equal(nip40.isExpired({ kind: 1, tags: [['expiration', 'x']] }, 1001), false, 'malformed tag');
  t.equal(nip40.isExpired({ kind: 20001, tags: [['expiration', '1000']] }, 5000), false, 'ephemeral');
  t.equal(nip40.isExpired({ kind: 30023, tags: [['expiration', '1000']] }, 5000), true, 'addressable');
});
