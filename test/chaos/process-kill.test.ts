// kill -9 of one of two processes under load: both serve clients and forward to an upstream relay from one
// database; one is killed with SIGKILL while events stream into both. Must hold: no event either process
// acknowledged (OK true) is lost, every one reaches the upstream relay once the killed process's leases expire,
// and the other process keeps serving throughout. (test/forwarding/crash.test.ts kills a lone forwarder mid-batch
// and checks the attempt log row by row; this is the whole service, under load, with a survivor.)
import t from 'tap';
import knexFactory from 'knex';
import { figures, full, latencies, startLoad } from '../helpers/chaos.js';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { forwardTestEnv, startServiceProcess, waitForFinal } from '../helpers/forwarding.js';
import { testRedisPrefix, testRedisUrl } from '../helpers/redis.js';
import { healthyRelay } from '../helpers/upstream-relays.js';

const local = (url: string) => url.replace('//localhost:', '//127.0.0.1:');

// Two service processes start in ~10 s each: the long suite only (crash.test.ts covers kill -9 in npm test).
t.test(
  'one of two processes is killed with SIGKILL under load',
  { skip: full ? false : 'long: npm run chaos' },
  async (t) => {
    const databaseUrl = await createTestDatabaseUrl(t);
    const direct = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 } });
    t.teardown(() => direct.destroy());
    const upstream = await healthyRelay(t, 'kill-upstream', 200); // answers 200 ms after each EVENT: some are in flight at the kill
    const env = {
      ...forwardTestEnv,
      DATABASE_URL: databaseUrl,
      REDIS_URL: testRedisUrl,
      REDIS_PREFIX: testRedisPrefix(t),
      UPSTREAM_RELAYS: upstream.url,
      FORWARD_BATCH_SIZE: '20',
    };
    const victim = await startServiceProcess(t, env);
    const survivor = await startServiceProcess(t, env);
    const seconds = 10;
    const options = { clients: 3, everyMs: 50, maxEvents: 60 * (seconds + 4) };
    const onVictim = await startLoad(local(victim.relayUrl), options);
    const onSurvivor = await startLoad(local(survivor.relayUrl), options);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    await Promise.all([onVictim.stop(2000), onSurvivor.stop()]);

    const answers = [...onVictim.answers, ...onSurvivor.answers];
    const acked = answers.filter((a) => a.ok).map((a) => a.id);
    const stored = new Set((await direct('nostr_events').whereIn('event_id', acked).pluck('event_id')) as string[]);
    const rows = await waitForFinal(direct, acked, 60_000);
    const forwardedAt = Date.now();
    const received = new Map<string, number>();
    for (const r of upstream.received) received.set(r.id, (received.get(r.id) ?? 0) + 1);
    const survivorAfter = onSurvivor.since(killedAt);

    figures(t, 'process-kill', {
      seconds,
      acknowledged: acked.length,
      acknowledgedLost: acked.length - stored.size,
      unansweredByVictim: latencies(onVictim.answers).unanswered,
      survivorEventsAfterKill: survivorAfter.length,
      survivorRefusedAfterKill: survivorAfter.filter((a) => a.ok !== true).length,
      allForwardedMsAfterKill: forwardedAt - killedAt,
      sentTwice: [...received.values()].filter((n) => n > 1).length,
      rowsPublished: rows.filter((r) => r.status === 'published').length,
    });

    t.ok(acked.length > 0, `${acked.length} events were acknowledged`);
    t.equal(stored.size, acked.length, 'every acknowledged event is stored');
    t.ok(
      rows.every((r) => r.status === 'published'),
      'and every one is published upstream',
    );
    t.ok(
      acked.every((id) => received.has(id)),
      'the upstream relay has every acknowledged event',
    );
    t.ok(survivorAfter.length > 0, `${survivorAfter.length} events were sent to the survivor after the kill`);
    t.same(
      survivorAfter.filter((a) => a.ok !== true),
      [],
      'the survivor accepted every one of them',
    );
    t.equal(survivor.child.exitCode, null, 'the survivor is still running');
  },
);
