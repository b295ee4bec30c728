import t from 'tap';
import * as messages from '../../src/nips/messages.js';
import type { ParsedClientMessage } from '../../src/nips/messages.js';

const limits = { maxSubIdLength: 64, maxFilters: 3 };
const parse = (text: string): ParsedClientMessage => messages.parseClientMessage(text, limits);
const messageOf = (r: ParsedClientMessage): string | undefined => (r.ok ? undefined : r.rejection.message);

t.test('parseClientMessage reads each NIP-01, NIP-42 and NIP-45 client message', async (t) => {
  t.same(parse('["EVENT",{"kind":1}]'), { ok: true, value: { type: 'EVENT', event: { kind: 1 } } });
  t.same(parse('["AUTH",{"kind":22242}]'), { ok: true, value: { type: 'AUTH', event: { kind: 22242 } } });
  t.same(parse('["REQ","sub",{"kinds":[1]},{}]'), {
    ok: true,
    value: { type: 'REQ', subId: 'sub', filters: [{ kinds: [1] }, {}] },
  });
  t.same(parse('["COUNT","q",{}]'), { ok: true, value: { type: 'COUNT', subId: 'q', filters: [{}] } });
  t.same(parse('["CLOSE","sub"]'), { ok: true, value: { type: 'CLOSE', subId: 'sub' } });
  t.same(parse(`["REQ","${'s'.repeat(64)}",{},{},{}]`).ok, true, 'a 64-character id and 3 filters are at the limits');
});

t.test('parseClientMessage says exactly what is wrong, without a subId when none could be read', async (t) => {
  const cases: [string, string][] = [
    ['["EVENT",', 'invalid: message is not valid JSON'],
    ['{"type":"EVENT"}', 'invalid: message must be a JSON array'],
    ['[]', 'invalid: message must start with a type string'],
    ['[1,2]', 'invalid: message must start with a type string'],
    ['["PING"]', 'invalid: unknown message type "PING"'],
    ['["EVENT"]', 'invalid: EVENT message must have exactly 2 elements, got 1'],
    ['["EVENT",{},{}]', 'invalid: EVENT message must have exactly 2 elements, got 3'],
    ['["AUTH"]', 'invalid: AUTH message must have exactly 2 elements, got 1'],
    ['["REQ"]', 'invalid: REQ message must have a subscription id string'],
    ['["REQ",1,{}]', 'invalid: REQ message must have a subscription id string'],
    ['["COUNT",null,{}]', 'invalid: COUNT message must have a subscription id string'],
    ['["CLOSE"]', 'invalid: CLOSE message must have a subscription id string'],
  ];
  for (const [text, message] of cases) {
    const r = parse(text);
    t.equal(messageOf(r), message, text);
    t.equal(r.subId, undefined, `${text} has no subId`);
  }
});

t.test('parseClientMessage returns the subId with a refusal so the caller can send CLOSED', async (t) => {
  const long = 's'.repeat(65);
  const cases: [string, string, string][] = [
    ['["REQ","",{}]', 'invalid: subscription id must not be empty', ''],
    [`["REQ","${long}",{}]`, 'invalid: subscription id is 65 characters, the limit is 64', long],
    ['["REQ","sub"]', 'invalid: REQ message has no filters', 'sub'],
    ['["COUNT","q"]', 'invalid: COUNT message has no filters', 'q'],
    ['["REQ","sub",{},{},{},{}]', 'invalid: REQ message has 4 filters, the limit is 3', 'sub'],
    ['["CLOSE","sub","extra"]', 'invalid: CLOSE message must have exactly 2 elements, got 3', 'sub'],
  ];
  for (const [text, message, subId] of cases) {
    const r = parse(text);
    t.equal(messageOf(r), message, text.slice(0, 40));
    t.equal(r.subId, subId);
  }
});

t.test('okMessage builds an OK reply', async (t) => {
  t.equal(messages.okMessage('ab', true, ''), '["OK","ab",true,""]');
  t.equal(messages.okMessage('ab', false, 'invalid: "quoted"'), '["OK","ab",false,"invalid: \\"quoted\\""]');
});

t.test('eventMessage splices already-serialised event JSON after an escaped subId', async (t) => {
  const eventJson = JSON.stringify({ id: 'x', content: 'a"b' });
  const text = messages.eventMessage('sub"1', eventJson);
  t.equal(text, '["EVENT","sub\\"1",' + eventJson + ']');
  t.same(JSON.parse(text), ['EVENT', 'sub"1', { id: 'x', content: 'a"b' }]);
});

t.test('eoseMessage builds an EOSE', async (t) => {
  t.equal(messages.eoseMessage('sub'), '["EOSE","sub"]');
});

t.test('closedMessage builds a CLOSED with its reason', async (t) => {
  t.equal(messages.closedMessage('sub', 'auth-required: log in'), '["CLOSED","sub","auth-required: log in"]');
});

t.test('noticeMessage builds a NOTICE', async (t) => {
  t.equal(messages.noticeMessage('hello'), '["NOTICE","hello"]');
});

t.test('authChallengeMessage builds an AUTH challenge', async (t) => {
  t.equal(messages.authChallengeMessage('c1'), '["AUTH","c1"]');
});

t.test('countMessage includes approximate only when given', async (t) => {
  t.equal(messages.countMessage('q', 5), '["COUNT","q",{"count":5}]');
  t.equal(messages.countMessage('q', 5, true), '["COUNT","q",{"count":5,"approximate":true}]');
  t.equal(messages.countMessage('q', 0, false), '["COUNT","q",{"count":0,"approximate":false}]');
});
