// Operational endpoints: liveness, readiness and Prometheus metrics. Unauthenticated; put them behind the
// load balancer's internal listener in production if the figures are not meant to be public.
import type { FastifyInstance } from 'fastify';
import type { Readiness } from '../core/ops/index.js';
import type { Metrics } from '../core/ops/index.js';

export interface OpsDeps {
  readonly metrics: Metrics;
  readonly readiness: () => Promise<Readiness>;
}

export function registerOpsRoutes(http: FastifyInstance, deps: OpsDeps): void {
  http.get('/healthz', async () => ({ status: 'ok' }));
  http.get('/readyz', async (_req, reply) => {
    const r = await deps.readiness();
    const status = !r.ready ? 'not ready' : r.degraded ? 'degraded' : 'ready';
    return reply.code(r.ready ? 200 : 503).send({ status, ...r.checks });
  });
  http.get('/metrics', async (_req, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}
