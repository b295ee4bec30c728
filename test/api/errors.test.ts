// One error shape everywhere, fastify's own failures included: { error: { code, message, field?, … } } with the
// catalog's status. Malformed JSON 400, oversized bodies 413, other media types 415, schema failures 400 naming the
// field and the reason, unknown routes 404.
import t from 'tap';
import { catalog } from '../../src/api/errors.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { newKey } from '../helpers/events.js';

const app = await startTestApp(t, { env: { API_BODY_LIMIT_BYTES: '2048' } });
const api = new ApiClient(app.url);
const alice = newKey();

t.test('malformed JSON is a 400 malformed_json, signed or not', async (t) => {
  const raw = '{"display_name": "Alice"';
  const r = await api.signed(alice, 'PATCH', '/v1/me', { raw, payloadOf: null });
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'malformed_json');
  t.match(r.body.error.message, /not valid JSON/);
  const anonymous = await api.request('POST', '/v1/webhooks/payments', { raw: '{nope' });
  t.equal(anonymous.status, 400);
  t.equal(anonymous.body.error.code, 'malformed_json');
});

t.test('JSON with a __proto__ key is refused as malformed', async (t) => {
  const r = await api.request('POST', '/v1/events', { raw: '{"__proto__": {"admin": true}}' });
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'malformed_json');
});

t.test('a string holding a NUL is refused as malformed: the database could not store it', async (t) => {
  const r = await api.signed(alice, 'PATCH', '/v1/me', { body: { display_name: 'Ali\u0000ce' } });
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'malformed_json');
  t.match(r.body.error.message, /NUL/);
  const me = await api.signed(alice, 'GET', '/v1/me');
  t.not(me.body.display_name, 'Ali\u0000ce', 'nothing was written');
});

t.test('a body over API_BODY_LIMIT_BYTES is a 413, before anything else', async (t) => {
  const body = { display_name: 'x'.repeat(3000) };
  const r = await api.signed(alice, 'PATCH', '/v1/me', { body });
  t.equal(r.status, 413);
  t.equal(r.body.error.code, 'body_too_large');
  const unsigned = await api.request('POST', '/v1/events', { body: { event: { content: 'y'.repeat(5000) } } });
  t.equal(unsigned.status, 413);
});

t.test('a body that is not JSON is a 415', async (t) => {
  const r = await api.signed(alice, 'PATCH', '/v1/me', {
    raw: 'display_name=Alice',
    contentType: 'application/x-www-form-urlencoded',
    payloadOf: null,
  });
  t.equal(r.status, 415);
  t.equal(r.body.error.code, 'unsupported_media_type');
  const text = await api.request('POST', '/v1/events', { raw: 'hello', contentType: 'text/plain' });
  t.equal(text.status, 415);
});

t.test('schema failures are a 400 naming the field and the reason', async (t) => {
  const cases: [unknown, string, RegExp][] = [
    [{ display_name: 'A', nickname: 'x' }, 'nickname', /body\.nickname is not an allowed field/],
    [{ data_retention_days: 'forever' }, 'data_retention_days', /body\.data_retention_days must be integer/],
    [{ data_retention_days: -1 }, 'data_retention_days', /must be >= 0/],
    [{ email: 'not-an-email' }, 'email', /body\.email must match pattern/],
    [{ display_name: 'x'.repeat(101) }, 'display_name', /must NOT have more than 100 characters/],
    [{}, 'body', /must NOT have fewer than 1 properties/],
    [[1, 2], 'body', /the request body must be a JSON object/],
  ];
  for (const [body, field, message] of cases) {
    const r = await api.signed(alice, 'PATCH', '/v1/me', { body });
    t.equal(r.status, 400, JSON.stringify(body));
    t.equal(r.body.error.code, 'validation_failed');
    t.equal(r.body.error.field, field);
    t.equal(r.body.error.location, 'body');
    t.match(r.body.error.message, message);
  }
});

t.test('a missing required field is named', async (t) => {
  const r = await api.signed(alice, 'POST', '/v1/events', { body: { source: { platform: 'twitter' } } });
  t.equal(r.status, 400);
  t.equal(r.body.error.field, 'event');
  t.equal(r.body.error.message, 'body.event is required');
});

t.test('a nested field is named by its path', async (t) => {
  const r = await api.signed(alice, 'POST', '/v1/events', { body: { event: { id: 'x' } } });
  t.equal(r.status, 400);
  t.match(r.body.error.field, /^event\./);
});

t.test('query strings and path parameters are validated too', async (t) => {
  const q = await api.signed(alice, 'GET', '/v1/events?limit=1000');
  t.equal(q.status, 400);
  t.same([q.body.error.field, q.body.error.location], ['limit', 'querystring']);
  const unknown = await api.signed(alice, 'GET', '/v1/events?color=red');
  t.equal(unknown.status, 400);
  t.equal(unknown.body.error.field, 'color');
  const p = await api.signed(alice, 'GET', '/v1/events/not-an-id');
  t.equal(p.status, 400);
  t.same([p.body.error.field, p.body.error.location], ['id', 'params']);
});

t.test('an unknown route is a 404 in the same shape', async (t) => {
  const r = await api.request('GET', '/v1/nothing-here');
  t.equal(r.status, 404);
  t.same(r.body, { error: { code: 'not_found', message: 'no route GET /v1/nothing-here' } });
  const wrongMethod = await api.request('PUT', '/v1/plans');
  t.equal(wrongMethod.status, 404);
  t.equal(wrongMethod.body.error.code, 'not_found');
});

t.test('authentication is checked before the body is validated', async (t) => {
  const r = await api.request('PATCH', '/v1/me', { body: { nickname: 'x' } });
  t.equal(r.status, 401, 'an unauthenticated caller learns nothing about the schema');
});

t.test('every status in the catalog is a client or server error, and codes are snake_case', async (t) => {
  for (const [code, entry] of Object.entries(catalog)) {
    t.match(code, /^[a-z]+(_[a-z0-9]+)*$/);
    t.ok(entry.status >= 400 && entry.status < 600, code);
    t.ok(entry.message.length > 0);
  }
});
