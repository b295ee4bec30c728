// Signature checks on worker threads (core/admission/verifier-pool.ts): the same verdicts as the main thread's check, for
// every event of a large batch and in order; a thread that dies loses no verdict; closing waits for the
// checks in flight.
import t, { type Test } from 'tap';
import * as nip01 from '../../../src/nips/nip01.js';
import { createVerifierPool, type VerifierPool } from '../../../src/core/admission/verifier-pool.js';
import { createLogger } from '../../../src/log.js';
import { buildEvent, newKey } from '../../helpers/events.js';

const log = createLogger('silent');

function forged(ev: nip01.NostrEvent): nip01.NostrEvent {
  return { ...ev, sig: ev.sig.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
}

/** A mix of good, forged and malformed-id events, each with the verdict the main thread gives it. */
function mixedEvents(n: number): { ev: nip01.NostrEvent; expected: ReturnType<typeof nip01.verifySignature> }[] {
  const key = newKey();
  return Array.from({ length: n }, (_, i) => {
    const good = buildEvent(key.sk, { content: `event ${i}` });
    const ev = i % 3 === 1 ? forged(good) : i % 3 === 2 ? { ...good, content: 'changed after signing' } : good;
    return { ev, expected: nip01.verifySignature(ev) };
  });
}

async function checkVerdicts(t: Test, pool: VerifierPool, n: number): Promise<void> {
  const cases = mixedEvents(n);
  const results = await Promise.all(cases.map(({ ev }) => pool.verify(ev)));
  let same = 0;
  results.forEach((r, i) => {
    const want = cases[i]!.expected;
    if (
      r.ok === want.ok &&
      (r.ok ? r.value.id === cases[i]!.ev.id : !want.ok && r.rejection.message === want.rejection.message)
    )
      same++;
  });
  t.equal(same, n, `all ${n} verdicts match the main thread's`);
}

let backend: nip01.VerifierBackend;
t.before(async () => {
  backend = (await nip01.initVerifier()).backend;
});

t.test('two threads give every event of a 700-event turn the main thread verdict, in order', async (t) => {
  const pool = await createVerifierPool({ threads: 2, log, backend });
  t.teardown(() => pool.close());
  t.equal(pool.threads, 2);
  await checkVerdicts(t, pool, 700);
  const [bad] = mixedEvents(2).slice(1);
  const r = await pool.verify(bad!.ev);
  t.same(r, { ok: false, rejection: { prefix: 'invalid', message: 'invalid: signature is invalid' } });
});

t.test('threads told to use nostr-wasm give the verdicts the main thread gives with its backend', async (t) => {
  const pool = await createVerifierPool({ threads: 1, log, backend: 'wasm' });
  t.teardown(() => pool.close());
  await checkVerdicts(t, pool, 60);
});

t.test('a turn with at most inlineUpTo checks verifies them here; a larger one goes to the threads', async (t) => {
  const pool = await createVerifierPool({
    threads: 1,
    log,
    backend,
    inlineUpTo: 4,
    workerUrl: new URL('../../helpers/marking-verify-worker.ts', import.meta.url),
  });
  t.teardown(() => pool.close());
  const key = newKey();
  const turn = async (n: number) => {
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => pool.verify(buildEvent(key.sk, { content: `turn of ${n}, ${i}` }))),
    );
    return results.map((r) => (r.ok ? 'here' : r.rejection.message));
  };
  t.same(await turn(4), Array(4).fill('here'), 'four checks: on the main thread, valid');
  t.same(await turn(5), Array(5).fill('invalid: checked on the thread'), 'five: on the thread');
  t.same(await turn(1), ['here']);
});

t.test('with nostr-wasm every check goes to the threads, however small the turn', async (t) => {
  const pool = await createVerifierPool({
    threads: 1,
    log,
    backend: 'wasm',
    inlineUpTo: 4,
    workerUrl: new URL('../../helpers/marking-verify-worker.ts', import.meta.url),
  });
  t.teardown(() => pool.close());
  const r = await pool.verify(buildEvent(newKey().sk));
  t.same(r, { ok: false, rejection: { prefix: 'invalid', message: 'invalid: checked on the thread' } });
});

t.test('what is handed on is a copy: changing the event afterwards changes nothing verified', async (t) => {
  const pool = await createVerifierPool({ threads: 1, log, backend });
  t.teardown(() => pool.close());
  const ev = { ...buildEvent(newKey().sk), extra: 'not a NIP-01 field' };
  const pending = pool.verify(ev);
  ev.content = 'tampered while in flight';
  const r = await pending;
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.value.content, 'hello');
  t.notOk('extra' in r.value, 'only the seven NIP-01 fields');
});

t.test('a thread that dies: its events are verified on the main thread, none is lost or waved through', async (t) => {
  const pool = await createVerifierPool({
    threads: 1,
    log,
    backend,
    workerUrl: new URL('../../helpers/dying-verify-worker.ts', import.meta.url),
  });
  t.teardown(() => pool.close());
  await checkVerdicts(t, pool, 30);
  await checkVerdicts(t, pool, 30); // the replacement dies too, and again nothing is lost
});

t.test('close waits for the checks in flight; later checks run on the main thread', async (t) => {
  const pool = await createVerifierPool({ threads: 1, log, backend });
  const cases = mixedEvents(90);
  const pending = Promise.all(cases.map(({ ev }) => pool.verify(ev)));
  await pool.close();
  const results = await pending;
  t.same(
    results.map((r) => r.ok),
    cases.map((c) => c.expected.ok),
  );
  await checkVerdicts(t, pool, 6);
  await pool.close();
});

t.test('zero threads: verification on the calling thread', async (t) => {
  const pool = await createVerifierPool({ threads: 0, log, backend });
  t.equal(pool.threads, 0);
  await checkVerdicts(t, pool, 9);
  await pool.close();
});

t.test('a thread that cannot start stops the pool from starting', async (t) => {
  await t.rejects(
    createVerifierPool({
      threads: 1,
      log,
      backend,
      workerUrl: new URL('../../helpers/no-such-worker.ts', import.meta.url),
    }),
  );
});
