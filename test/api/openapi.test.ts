// GET /v1/openapi.json: an OpenAPI 3.1 document generated from the route schemas. Every route the server has is in
// it, and everything in it is a route the server has; protected routes say how to authenticate.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';

const app = await startTestApp(t);
const api = new ApiClient(app.url);

/** Every METHOD /path of the server, read from fastify's own route tree (HEAD routes fastify adds are left out). */
function serverRoutes(): Set<string> {
  const routes = new Set<string>();
  const parents: string[] = [];
  for (const line of app.http.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/u.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    const path = (depth === 0 ? '' : (parents[depth - 1] ?? '')) + (m[2] ?? '');
    parents[depth] = path;
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) {
      if (method !== 'HEAD') routes.add(`${method} ${path.replace(/^\/\//, '/')}`);
    }
  }
  return routes;
}

interface Operation {
  summary?: string;
  security?: unknown[];
  responses?: Record<string, unknown>;
}

t.test('the document is OpenAPI 3.1, served without authentication', async (t) => {
  const r = await api.request('GET', '/v1/openapi.json');
  t.equal(r.status, 200);
  t.equal(r.body.openapi, '3.1.0');
  t.ok(r.body.info.title);
  t.ok(r.body.components.securitySchemes.nip98);
  t.ok(r.body.components.securitySchemes.session);
  for (const name of [
    'Error',
    'NostrEvent',
    'EventRecord',
    'RelayOutcome',
    'Plan',
    'Session',
    'Profile',
    'Relay',
    'Subscription',
    'Payment',
    'QuotaPeriod',
    'AdminUser',
    'Nip86Reply',
  ]) {
    t.ok(r.body.components.schemas[name], `components.schemas.${name}`);
  }
});

t.test('every route the server has is documented, and every documented route exists', async (t) => {
  const doc = (await api.request('GET', '/v1/openapi.json')).body as {
    paths: Record<string, Record<string, Operation>>;
  };
  const documented = new Set<string>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops))
      documented.add(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1').replace(/\{\*\}/g, '*')}`);
  }
  const served = serverRoutes();
  // the browsers' CORS preflights (api/cors.ts): answered for every /v1 path, not an operation of the API
  served.delete('OPTIONS *');
  t.ok(served.size >= 30, `${served.size} routes`);
  t.same([...served].filter((r) => !documented.has(r)).sort(), [], 'served but not documented');
  t.same([...documented].filter((r) => !served.has(r)).sort(), [], 'documented but not served');
  for (const route of [
    'GET /v1/plans',
    'POST /v1/events',
    'GET /v1/events/:id',
    'DELETE /v1/sessions/current',
    'POST /v1/webhooks/payments',
    'PUT /v1/admin/users/:id/plan',
    'POST /',
    'GET /',
  ]) {
    t.ok(served.has(route) && documented.has(route), route);
  }
});

t.test('every /v1 operation has a summary and its error responses; protected ones name their security', async (t) => {
  const doc = (await api.request('GET', '/v1/openapi.json')).body as {
    paths: Record<string, Record<string, Operation>>;
  };
  const publicRoutes = new Set([
    'GET /v1/plans',
    'GET /v1/openapi.json',
    'POST /v1/webhooks/payments',
    'POST /v1/webhooks/stripe',
    'GET /v1/email/verify',
  ]);
  for (const [path, ops] of Object.entries(doc.paths)) {
    if (!path.startsWith('/v1/')) continue;
    for (const [method, op] of Object.entries(ops)) {
      const route = `${method.toUpperCase()} ${path}`;
      t.ok(op.summary, `${route} has a summary`);
      t.ok(op.responses && Object.keys(op.responses).some((c) => c.startsWith('4')), `${route} documents its errors`);
      if (publicRoutes.has(route)) t.notOk(op.security?.length, `${route} is public`);
      else t.ok(op.security?.length, `${route} declares its security`);
    }
  }
});

t.test('GET /v1/plans lists the public, active plans with prices and limits', async (t) => {
  const r = await api.request('GET', '/v1/plans');
  t.equal(r.status, 200);
  t.same(
    r.body.plans.map((p: { code: string }) => p.code),
    ['basic', 'premium', 'advanced'],
  );
  t.match(r.body.plans[0], {
    code: 'basic',
    price_monthly: '0.00',
    daily_post_limit: 3,
    custom_relays_allowed: false,
    max_custom_relays: null,
    analytics_enabled: false,
  });
  t.match(r.body.plans[2], {
    code: 'advanced',
    price_monthly: '9.99',
    daily_post_limit: -1,
    custom_relays_allowed: true,
    max_custom_relays: 10,
  });
  await app.db
    .knex('subscription_plans')
    .insert({ plan_code: 'staff', name: 'Staff', daily_post_limit: -1, is_public: false });
  app.plans.invalidateAll();
  const again = await api.request('GET', '/v1/plans');
  t.notOk(
    again.body.plans.some((p: { code: string }) => p.code === 'staff'),
    'hidden plans are not listed',
  );
});
