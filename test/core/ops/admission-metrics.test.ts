// Admission metrics (core/ops/metrics.ts countAdmissions(), an admission listener): every outcome counted under its
// own labels and timed, with the labelled series kept between calls.
import t from 'tap';
import client from 'prom-client';
import type { Admission } from '../../../src/core/admission/contract.js';
import { countAdmissions } from '../../../src/core/ops/metrics.js';
import { rejection } from '../../../src/nips/result.js';

function metricsIn(registry: client.Registry) {
  return {
    events: new client.Counter({
      name: 'nostrx_events_total',
      help: 'h',
      labelNames: ['outcome', 'reason', 'via'] as const,
      registers: [registry],
    }),
    admissionSeconds: new client.Histogram({
      name: 'nostrx_admission_seconds',
      help: 'h',
      labelNames: ['outcome'] as const,
      buckets: [0.001, 1],
      registers: [registry],
    }),
  };
}

t.test('outcomes are counted by outcome, reason and way in, and timed by outcome', async (t) => {
  const registry = new client.Registry();
  const answers: Admission[] = [
    { status: 'accepted', eventId: 'a', message: '' },
    { status: 'rejected', eventId: 'b', rejection: rejection('blocked', 'no') },
    { status: 'rejected', eventId: 'c', rejection: rejection('blocked', 'no') },
    { status: 'rejected', eventId: 'd', rejection: rejection('rate-limited', 'later') },
    { status: 'duplicate', eventId: 'e', message: 'duplicate: have it' },
  ];
  const count = countAdmissions(metricsIn(registry));
  const vias = ['relay', 'relay', 'relay', 'api', 'relay'] as const;
  answers.forEach((outcome, i) => count(outcome, { via: vias[i]!, authed: new Set() }, 0.0005));
  const text = await registry.metrics();
  t.match(text, /nostrx_events_total\{outcome="accepted",reason="",via="relay"\} 1\n/);
  t.match(text, /nostrx_events_total\{outcome="rejected",reason="blocked",via="relay"\} 2\n/);
  t.match(text, /nostrx_events_total\{outcome="rejected",reason="rate-limited",via="api"\} 1\n/);
  t.match(text, /nostrx_events_total\{outcome="duplicate",reason="",via="relay"\} 1\n/);
  t.match(text, /nostrx_admission_seconds_count\{outcome="rejected"\} 3\n/);
  t.match(text, /nostrx_admission_seconds_count\{outcome="accepted"\} 1\n/);
});
