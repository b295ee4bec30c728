// The pooled random bytes (lib/random-pool.ts): each call gets bytes no other call got, across refills of the pool.
import t from 'tap';
import { pooledRandomBytes } from '../../src/lib/random-pool.js';

t.test('600 draws of 16 bytes (two refills of the 4 KB pool) are all different and not all zero', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 600; i++) seen.add(Buffer.from(pooledRandomBytes(16)).toString('hex'));
  t.equal(seen.size, 600);
  t.notOk(seen.has('0'.repeat(32)));
});

t.test('a draw that does not fit in what is left of the pool comes whole from a new fill', async (t) => {
  pooledRandomBytes(4000);
  const b = pooledRandomBytes(200);
  t.equal(b.length, 200);
});
