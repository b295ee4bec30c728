// PostgreSQL goes away under load, three ways, through a TCP proxy in front of the machine's server (which is never
// touched): connections reset and new ones refused, every byte delayed, connections that accept and never answer.
// The service runs in a child process with its default limits. Must hold: every EVENT is answered (OK true only
// for what was stored, else `error:`), /readyz says 503 meanwhile, the API answers 503 with a JSON body, the
// process does not exit, and once the database is back the service accepts events again with no restart and
// nothing it acknowledged is missing. `npm run chaos` also holds it to the times of issue #18 (answers within
// 5 s, recovery within 5 s) and runs longer outages.
import t from 'tap';
import knexFactory from 'knex';
import { ApiClient } from '../helpers/api.js';
import { figures, full, latencies, startLoad } from '../helpers/chaos.js';
import { defaultLimits } from '../helpers/limits.js';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { startServiceProcess } from '../helpers/forwarding.js';
import { waitFor } from '../helpers/wait-for.js';
import { startTcpProxy, throughProxy } from '../helpers/tcp-proxy.js';

const databaseUrl = await createTestDatabaseUrl(t);
const direct = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 } });
t.teardown(() => direct.destroy());
const pg = new URL(databaseUrl);
const proxy = await startTcpProxy(t, { host: pg.hostname, port: Number(pg.port || 5432) });
const service = await startServiceProcess(t, {
  ...defaultLimits,
  DATABASE_URL: throughProxy(databaseUrl, proxy),
  POST_KINDS: '40000',
  FORWARD_ENABLED: 'false',
});
const relayUrl = service.relayUrl.replace('//localhost:', '//127.0.0.1:');
const port = new URL(service.relayUrl).port;
const httpUrl = `http://127.0.0.1:${port}`;
const api = new ApiClient(httpUrl);

type Fault = 'cut' | 'slow' | 'half-open';
const outages: { fault: Fault; seconds: number }[] = full
  ? [
      { fault: 'cut', seconds: 5 },
      { fault: 'cut', seconds: 10 },
      { fault: 'cut', seconds: 30 },
      { fault: 'slow', seconds: 10 },
      { fault: 'half-open', seconds: 10 },
      { fault: 'half-open', seconds: 30 },
    ]
  : [
      { fault: 'cut', seconds: 5 },
      { fault: 'half-open', seconds: 5 },
    ];

/** The service's count of answers given at their deadline, by `via` (GET /metrics). */
async function deadlineAnswers(): Promise<Record<string, number>> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^nostrx_deadline_answers_total\{via="(\w+)"\} (\S+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

async function readyStatus(): Promise<number> {
  return (await fetch(`${httpUrl}/readyz`)).status;
}

interface ApiAnswer {
  readonly status: number;
  readonly code?: string;
  readonly ms: number;
}

async function apiPublish(): Promise<ApiAnswer> {
  const key = newKey();
  const started = Date.now();
  const r = await api.signed(key, 'POST', '/v1/events', {
    body: { event: buildEvent(key.sk) },
    signUrl: `http://localhost:${port}/v1/events`,
  });
  return { status: r.status, code: r.body?.error?.code, ms: Date.now() - started };
}

for (const { fault, seconds } of outages) {
  t.test(`PostgreSQL ${fault} for ${seconds} s under load`, async (t) => {
    await waitFor('the API to take an event', async () => (await apiPublish()).status === 202, 60_000, 200);
    const deadlinesBefore = await deadlineAnswers();
    const load = await startLoad(relayUrl, { clients: 4, everyMs: 100, maxEvents: 40 * (seconds + 10) });
    await new Promise((r) => setTimeout(r, 1000));

    if (fault === 'cut') await proxy.cut();
    else if (fault === 'slow') await proxy.slow(seconds * 1000);
    else await proxy.halfOpen();
    const faultAt = Date.now();
    // While it lasts, readiness and the API are asked about every half second (each answer is awaited: on a loaded
    // machine there are fewer asks, never overlapping ones).
    const ready: number[] = [];
    const apiAnswers: ApiAnswer[] = [];
    while (Date.now() - faultAt < seconds * 1000) {
      const [r, a] = await Promise.all([readyStatus(), apiPublish(), new Promise((r) => setTimeout(r, 500))]);
      ready.push(r);
      apiAnswers.push(a);
    }
    await proxy.restore();
    const restoredAt = Date.now();

    // Recovery: the first event sent after the restore that is stored, and /readyz back to 200.
    const acceptedAt = await waitFor(
      'an event sent after the restore to be stored',
      async () => load.since(restoredAt).find((a) => a.ok)?.answeredAt,
      60_000,
      20,
    );
    await waitFor('/readyz to answer 200 again', async () => (await readyStatus()) === 200, 60_000, 100);
    const readyAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    await load.stop();

    const during = load.answers.filter((a) => a.sentAt >= faultAt && a.sentAt < restoredAt);
    const all = latencies(load.answers);
    const out = latencies(during);
    const acked = load.answers.filter((a) => a.ok).map((a) => a.id);
    const stored = new Set((await direct('nostr_events').whereIn('event_id', acked).pluck('event_id')) as string[]);
    const refused = load.answers.filter((a) => a.ok === false);
    const apiWorst = Math.max(...apiAnswers.map((a) => a.ms));
    const deadlinesAfter = await deadlineAnswers();
    const atDeadline = (via: string) => (deadlinesAfter[via] ?? 0) - (deadlinesBefore[via] ?? 0);
    // the load's events and the API's come in with their own `via`; each answered at its deadline says so
    const timedOut = (list: { message?: string | undefined }[]) =>
      list.filter((a) => /^error: could not store the event within \d+ ms/.test(a.message ?? '')).length;
    figures(t, 'postgres-outage', {
      fault,
      seconds,
      events: all.events,
      duringFault: out.events,
      maxAnswerMsDuringFault: out.max,
      p50AnswerMsDuringFault: out.p50,
      acknowledged: acked.length,
      acknowledgedLost: acked.length - stored.size,
      refusedWithError: refused.length,
      recoveryMs: acceptedAt - restoredAt,
      readyAgainMs: readyAt - restoredAt,
      readyz503: `${ready.filter((s) => s === 503).length}/${ready.length}`,
      api503: `${apiAnswers.filter((a) => a.status === 503 && a.code === 'unavailable').length}/${apiAnswers.length}`,
      apiWorstMs: apiWorst,
      deadlineAnswers: { relay: atDeadline('relay'), api: atDeadline('api'), http: atDeadline('http') },
    });

    t.equal(all.unanswered, 0, 'every EVENT got an OK');
    t.ok(out.events > 0, `${out.events} events were sent during the fault`);
    t.same(
      refused.filter((a) => !a.message?.startsWith('error: ')),
      [],
      'every refusal is an error: (an infrastructure failure, never a verdict on the event)',
    );
    t.equal(stored.size, acked.length, `all ${acked.length} acknowledged events are stored`);
    t.ok(
      ready.every((s) => s === 503),
      `/readyz answered 503 throughout (${ready.length} asks)`,
    );
    t.ok(
      apiAnswers.every((a) => (a.status === 503 && a.code === 'unavailable') || a.status === 202),
      `the API answered 503 unavailable with a JSON body (or 202 for what it stored): ${JSON.stringify(apiAnswers.map((a) => a.status))}`,
    );
    t.ok(
      apiAnswers.some((a) => a.status === 503),
      'and at least once 503',
    );
    t.equal(
      atDeadline('relay'),
      timedOut(load.answers),
      'nostrx_deadline_answers_total{via="relay"} counts the EVENTs answered at their deadline',
    );
    if (fault === 'half-open')
      t.ok(atDeadline('relay') > 0, 'a database that never answers is answered for at the deadline');
    t.equal(service.child.exitCode, null, 'the process did not exit');
    await waitFor('the API to take events again', async () => (await apiPublish()).status === 202, 60_000, 200);
    t.pass('the API works after');
    if (full) {
      t.ok(out.max <= 5000, `every EVENT during the fault was answered within 5 s (worst ${out.max} ms)`);
      t.ok(apiWorst <= 5000, `every API request during the fault was answered within 5 s (worst ${apiWorst} ms)`);
      t.ok(
        acceptedAt - restoredAt <= 5000,
        `events are stored again within 5 s of the restore (${acceptedAt - restoredAt} ms)`,
      );
    }
  });
}
