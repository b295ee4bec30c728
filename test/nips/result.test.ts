import t from 'tap';
import { fail, failWith, ok, reasonOf, rejection } from '../../src/nips/result.js';

t.test('rejection joins the prefix and the text into the wire message', async (t) => {
  t.same(rejection('invalid', 'id does not match the event hash'), {
    prefix: 'invalid',
    message: 'invalid: id does not match the event hash',
  });
  t.equal(rejection('auth-required', 'log in first').message, 'auth-required: log in first');
});

t.test('ok wraps the accepted value', async (t) => {
  t.same(ok(42), { ok: true, value: 42 });
});

t.test('fail carries a rejection with its prefix', async (t) => {
  t.same(fail('rate-limited', 'slow down'), {
    ok: false,
    rejection: { prefix: 'rate-limited', message: 'rate-limited: slow down' },
  });
});

t.test('failWith passes an existing rejection through unchanged', async (t) => {
  const r = rejection('blocked', 'no');
  const result = failWith<number>(r);
  t.equal(result.ok, false);
  if (!result.ok) t.equal(result.rejection, r);
});

t.test('reasonOf is the text without its prefix, whatever the prefix', async (t) => {
  t.equal(reasonOf(rejection('invalid', 'id does not match the event hash')), 'id does not match the event hash');
  t.equal(reasonOf(rejection('rate-limited', 'slow down: 3 a day')), 'slow down: 3 a day');
  t.equal(reasonOf(rejection('auth-required', 'log in first')), 'log in first');
});
