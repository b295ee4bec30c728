// The per-user slots for capped posts (core/quota/post-gate.ts) on their own, then through admission: a user at the
// limit flooding is answered from memory after the first few, and forged posts cannot keep a real one waiting.
import t from 'tap';
import { createPostGate } from '../../../src/core/quota/post-gate.js';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';

t.test('at most `slots` posts of a user pass at once; leaving lets the next one in', async (t) => {
  const gate = createPostGate();
  const passed: string[] = [];
  const entries = ['a', 'b', 'c', 'd'].map((id) =>
    gate.enter('u1', id, 2, () => true).then((ok) => ok && passed.push(id)),
  );
  await new Promise((r) => setImmediate(r));
  t.same(passed, ['a', 'b']);
  t.equal(await gate.enter('u2', 'x', 2, () => true), true, 'another user has slots of their own');
  gate.leave('u1', 'a');
  await new Promise((r) => setImmediate(r));
  t.same(passed, ['a', 'b', 'c']);
  gate.leave('u1', 'nobody');
  gate.leave('u1', 'b');
  await Promise.all(entries);
  t.same(passed, ['a', 'b', 'c', 'd']);
});

t.test('waiters woken when the gate closes are answered false, without a slot', async (t) => {
  const gate = createPostGate();
  let open = true;
  t.equal(await gate.enter('u', 'a', 1, () => open), true);
  const waiting = gate.enter('u', 'b', 1, () => open);
  open = false;
  gate.wake('u');
  t.equal(await waiting, false);
  gate.leave('u', 'b'); // took no slot: nothing to give back
  gate.leave('u', 'a');
  t.equal(await gate.enter('u', 'c', 1, () => true), true, 'the one slot is free again');
});

const app = await startTestApp(t);
const relayCtx = { via: 'relay' as const, authed: new Set<string>() };

t.test('a basic user at the limit sending 300 posts at once: all refused, from memory after the first', async (t) => {
  const k = newKey();
  for (let i = 0; i < 3; i++)
    t.equal((await app.admit(buildEvent(k.sk, { content: `use ${i}` }), relayCtx)).status, 'accepted');
  const flood = Array.from({ length: 300 }, (_, i) => buildEvent(k.sk, { content: `flood ${i}` }));
  const answers = await Promise.all(flood.map((ev) => app.admit(ev, relayCtx)));
  t.ok(answers.every((a) => a.status === 'rejected' && a.rejection.prefix === 'rate-limited'));
  const stored = (await app.db.knex('nostr_events').where({ pubkey: k.pk }).count({ n: '*' })) as { n: string }[];
  t.equal(Number(stored[0]?.n), 3);
});

t.test('forged posts holding the slots give them back when their signature fails', async (t) => {
  const k = newKey();
  const other = newKey();
  await app.accounts.forPubkey(k.pk); // a known user: precheck (and the gate) applies
  const forged = Array.from({ length: 3 }, (_, i) => ({
    ...buildEvent(other.sk, { content: `forged ${i}` }),
    pubkey: k.pk,
  }));
  const real = buildEvent(k.sk, { content: 'the real one' });
  const answers = await Promise.all([...forged, real].map((ev) => app.admit(ev, relayCtx)));
  t.same(
    answers.slice(0, 3).map((a) => a.status === 'rejected' && a.rejection.prefix),
    ['invalid', 'invalid', 'invalid'],
  );
  t.equal(answers[3]?.status, 'accepted');
});
