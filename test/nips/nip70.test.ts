import t from 'tap';
import * as nip70 from '../../src/nips/nip70.js';

t.test('isProtected is true only for a tag that is exactly ["-"]', async (t) => {
  t.equal(nip70.isProtected({ tags: [['t', 'x'], ['-']] }), true);
  t.equal(nip70.isProtected({ tags: [] }), false);
  t.equal(nip70.isProtected({ tags: [['-', '']] }), false);
  t.equal(nip70.isProtected({ tags: [['--']] }), false);
  t.equal(nip70.isProtected({ tags: [['t', '-']] }), false);
});
