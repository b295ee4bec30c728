/**
 * NIP-01/42/45 wire messages: parsing what clients send, building what the relay sends.
 * Events and filters inside a message are left `unknown`; nip01.parseEvent and
 * filter.parseFilter check them.
 */
import { fail, ok } from './result.js';
import type { Result } from './result.js';

export type ClientMessage =
  | { type: 'EVENT'; event: unknown }
  | { type: 'REQ'; subId: string; filters: unknown[] }
  | { type: 'COUNT'; subId: string; filters: unknown[] }
  | { type: 'CLOSE'; subId: string }
  | { type: 'AUTH'; event: unknown }
  /** NIP-77: `filters` is the one filter, or the array of filters some clients send (NDK), each left unknown. */
  | { type: 'NEG-OPEN'; subId: string; filters: unknown[]; message: string }
  | { type: 'NEG-MSG'; subId: string; message: string }
  | { type: 'NEG-CLOSE'; subId: string };

export interface MessageLimits {
  maxSubIdLength: number;
  maxFilters: number;
}

/**
 * A parse result; on failure `subId` is set whenever the message had a string in the subId
 * position (even an empty or over-long one), so the caller can answer a refused REQ or COUNT
 * with CLOSED for that id instead of a NOTICE.
 */
export type ParsedClientMessage = Result<ClientMessage> & { subId?: string; negentropy?: true };

function refuse(text: string, subId?: string): ParsedClientMessage {
  const r = fail<ClientMessage>('invalid', text);
  return subId === undefined ? r : { ...r, subId };
}

/** NIP-77 messages: a refusal with a session id is answered NEG-ERR for it. */
function parseNegentropy(
  type: 'NEG-OPEN' | 'NEG-MSG' | 'NEG-CLOSE',
  msg: unknown[],
  limits: MessageLimits,
): ParsedClientMessage {
  const subId: unknown = msg[1];
  if (typeof subId !== 'string') return refuse(`${type} message must have a subscription id string`);
  const refuseNeg = (text: string): ParsedClientMessage => ({ ...refuse(text, subId), negentropy: true });
  if (subId.length === 0) return refuseNeg('subscription id must not be empty');
  if (subId.length > limits.maxSubIdLength)
    return refuseNeg(`subscription id is ${subId.length} characters, the limit is ${limits.maxSubIdLength}`);
  const expected = type === 'NEG-OPEN' ? 4 : type === 'NEG-MSG' ? 3 : 2;
  if (msg.length !== expected)
    return refuseNeg(`${type} message must have exactly ${expected} elements, got ${msg.length}`);
  if (type === 'NEG-CLOSE') return ok({ type, subId });
  const message: unknown = msg[expected - 1];
  if (typeof message !== 'string') return refuseNeg(`${type} message must end with a hex string`);
  if (type === 'NEG-MSG') return ok({ type, subId, message });
  const filters = Array.isArray(msg[2]) ? (msg[2] as unknown[]) : [msg[2]];
  if (filters.length === 0) return refuseNeg('NEG-OPEN message has no filter');
  if (filters.length > limits.maxFilters)
    return refuseNeg(`NEG-OPEN message has ${filters.length} filters, the limit is ${limits.maxFilters}`);
  return ok({ type, subId, filters, message });
}

export function parseClientMessage(text: string, limits: MessageLimits): ParsedClientMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return refuse('message is not valid JSON');
  }
  if (!Array.isArray(msg)) return refuse('message must be a JSON array');
  const type: unknown = msg[0];
  if (typeof type !== 'string') return refuse('message must start with a type string');
  switch (type) {
    case 'EVENT':
    case 'AUTH':
      if (msg.length !== 2) return refuse(`${type} message must have exactly 2 elements, got ${msg.length}`);
      return ok({ type, event: msg[1] as unknown });
    case 'REQ':
    case 'COUNT':
    case 'CLOSE': {
      const subId: unknown = msg[1];
      if (typeof subId !== 'string') return refuse(`${type} message must have a subscription id string`);
      if (subId.length === 0) return refuse('subscription id must not be empty', subId);
      if (subId.length > limits.maxSubIdLength) {
        return refuse(`subscription id is ${subId.length} characters, the limit is ${limits.maxSubIdLength}`, subId);
      }
      if (type === 'CLOSE') {
        if (msg.length !== 2) return refuse(`CLOSE message must have exactly 2 elements, got ${msg.length}`, subId);
        return ok({ type, subId });
      }
      const filters = msg.slice(2) as unknown[];
      if (filters.length === 0) return refuse(`${type} message has no filters`, subId);
      if (filters.length > limits.maxFilters) {
        return refuse(`${type} message has ${filters.length} filters, the limit is ${limits.maxFilters}`, subId);
      }
      return ok({ type, subId, filters });
    }
    case 'NEG-OPEN':
    case 'NEG-MSG':
    case 'NEG-CLOSE':
      return parseNegentropy(type, msg, limits);
    default:
      return refuse(`unknown message type "${type.slice(0, 32)}"`);
  }
}

export function okMessage(id: string, accepted: boolean, message: string): string {
  return JSON.stringify(['OK', id, accepted, message]);
}

/** `["EVENT",<subId>,<eventJson>]` by concatenation: `eventJson` must already be serialised JSON. */
export function eventMessage(subId: string, eventJson: string): string {
  return '["EVENT",' + JSON.stringify(subId) + ',' + eventJson + ']';
}

export function eoseMessage(subId: string): string {
  return JSON.stringify(['EOSE', subId]);
}

export function closedMessage(subId: string, message: string): string {
  return JSON.stringify(['CLOSED', subId, message]);
}

export function noticeMessage(message: string): string {
  return JSON.stringify(['NOTICE', message]);
}

export function authChallengeMessage(challenge: string): string {
  return JSON.stringify(['AUTH', challenge]);
}

/** NIP-45 reply; `approximate` is included only when given. */
export function countMessage(subId: string, count: number, approximate?: boolean): string {
  return JSON.stringify(['COUNT', subId, approximate === undefined ? { count } : { count, approximate }]);
}

/** NIP-77: a reconciliation message (hex). */
export function negMsgMessage(subId: string, hex: string): string {
  return JSON.stringify(['NEG-MSG', subId, hex]);
}

/** NIP-77: the session ended on the relay's side; `reason` carries a prefix (`blocked:`, `closed:`, `invalid:` …). */
export function negErrMessage(subId: string, reason: string): string {
  return JSON.stringify(['NEG-ERR', subId, reason]);
}
