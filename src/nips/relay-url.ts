/**
 * Relay URLs and address classes for outbound connections. No DNS here: the caller resolves
 * the host and classifies every resolved address before connecting.
 */
import ipaddr from 'ipaddr.js';
import { normalizeURL } from 'nostr-tools/utils';
import { fail, ok } from './result.js';
import type { Result } from './result.js';

export interface RelayUrl {
  /** normalizeURL form: lowercase host, default port dropped, '/' for an empty path. */
  url: string;
  /** Hostname without brackets (an IPv6 literal is bare: `::1`), ready for DNS or classifyAddress. */
  host: string;
  /** The effective port (443 for wss, 80 for ws when none is given). */
  port: number;
  secure: boolean;
}

const MAX_RELAY_URL_LENGTH = 2048;

export function parseRelayUrl(url: string): Result<RelayUrl> {
  if (url.length > MAX_RELAY_URL_LENGTH)
    return fail('invalid', `relay URL is longer than ${MAX_RELAY_URL_LENGTH} characters`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('invalid', 'relay URL is not a valid URL');
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:')
    return fail('invalid', 'relay URL must start with ws:// or wss://');
  if (u.username !== '' || u.password !== '') return fail('invalid', 'relay URL must not contain credentials');
  if (u.hostname === '') return fail('invalid', 'relay URL has no host');
  const secure = u.protocol === 'wss:';
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port === '' ? (secure ? 443 : 80) : Number(u.port);
  return ok({ url: normalizeURL(u.href), host, port, secure });
}

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'multicast' | 'unspecified' | 'reserved';

function classifyV4(ip: ipaddr.IPv4): AddressClass {
  switch (ip.range()) {
    case 'unicast':
      return 'public';
    case 'loopback':
      return 'loopback';
    case 'private':
    case 'carrierGradeNat':
      return 'private';
    case 'linkLocal':
      return 'link-local';
    case 'multicast':
      return 'multicast';
    case 'unspecified':
      return 'unspecified';
    default:
      return 'reserved'; // broadcast, documentation, benchmarking, 240/4, AS112, AMT …
  }
}

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');

function embeddedV4(parts: number[], hi: number): ipaddr.IPv4 {
  const a = parts[hi] ?? 0;
  const b = parts[hi + 1] ?? 0;
  return new ipaddr.IPv4([a >> 8, a & 0xff, b >> 8, b & 0xff]);
}

function classifyV6(ip: ipaddr.IPv6): AddressClass {
  switch (ip.range()) {
    case 'ipv4Mapped':
      return classifyV4(ip.toIPv4Address());
    case 'rfc6052': // NAT64 64:ff9b::/96 carries an IPv4 address in its last 32 bits
      return ip.parts[2] === 0 ? classifyV4(embeddedV4(ip.parts, 6)) : 'reserved';
    case '6to4': // 2002:AABB:CCDD::/48 carries the IPv4 address AA.BB.CC.DD
      return classifyV4(embeddedV4(ip.parts, 1));
    case 'loopback':
      return 'loopback';
    case 'uniqueLocal':
      return 'private';
    case 'linkLocal':
      return 'link-local';
    case 'multicast':
      return 'multicast';
    case 'unspecified':
      return 'unspecified';
    case 'unicast':
      return ip.match(GLOBAL_UNICAST_V6) ? 'public' : 'reserved';
    default:
      return 'reserved'; // site-local, Teredo, documentation, ORCHID, IPv4-translated …
  }
}

/**
 * The class of a resolved IP address (IPv4, IPv6, IPv4-mapped IPv6, optionally in brackets).
 * Only 'public' addresses are safe to connect to. Anything that does not parse as an IP address
 * is 'reserved', so a caller that allows only 'public' fails closed.
 */
export function classifyAddress(ip: string): AddressClass {
  const text = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(text);
  } catch {
    return 'reserved';
  }
  return addr.kind() === 'ipv4' ? classifyV4(addr as ipaddr.IPv4) : classifyV6(addr as ipaddr.IPv6);
}
