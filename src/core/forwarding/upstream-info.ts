// NIP-11 documents of upstream relays: an http(s) GET on the relay URL with `Accept: application/nostr+json`,
// bounded in time and size, no redirects, through the caller's `lookup` (the SSRF guard for user relays).
import http from 'node:http';
import https from 'node:https';
import { parseRelayUrl } from '../../nips/relay-url.js';
import type { guardedLookup } from './relay-targets.js';

export interface RelayInfo {
  /** The document as the relay sent it. */
  readonly info: Record<string, unknown>;
  /** Its supported_nips: integers only, sorted, deduplicated; null when absent. */
  readonly supportedNips: number[] | null;
}

const MAX_BYTES = 64 * 1024;

/** Parses a NIP-11 document: a JSON object; supported_nips keeps the integers it lists. */
export function parseRelayInfo(body: string): RelayInfo | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const info = doc as Record<string, unknown>;
  const nips = Array.isArray(info.supported_nips)
    ? [...new Set(info.supported_nips.filter((n): n is number => Number.isInteger(n) && n >= 0 && n <= 65535))].sort(
        (a, b) => a - b,
      )
    : null;
  return { info, supportedNips: nips };
}

/** Fetches and parses the relay's NIP-11 document; rejects on any failure (status, size, time, JSON). */
export async function fetchRelayInfo(
  relayUrl: string,
  opts: { timeoutMs: number; userAgent: string; lookup?: ReturnType<typeof guardedLookup> },
): Promise<RelayInfo> {
  const parsed = parseRelayUrl(relayUrl);
  if (!parsed.ok) throw new Error(parsed.rejection.message);
  const target = new URL(parsed.value.url);
  target.protocol = parsed.value.secure ? 'https:' : 'http:';
  const client = parsed.value.secure ? https : http;
  const body = await new Promise<string>((resolve, reject) => {
    const req = client.get(
      target,
      {
        headers: { Accept: 'application/nostr+json', 'User-Agent': opts.userAgent },
        timeout: opts.timeoutMs,
        ...(opts.lookup ? { lookup: opts.lookup } : {}),
      },
      (res) => {
        if ((res.statusCode ?? 0) !== 200) {
          res.resume();
          reject(new Error(`HTTP ${res.statusCode ?? '?'}`));
          return;
        }
        let size = 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BYTES) req.destroy(new Error('the NIP-11 document is larger than 64 KiB'));
          else chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no NIP-11 document within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
  });
  const info = parseRelayInfo(body);
  if (!info) throw new Error('the NIP-11 document is not a JSON object');
  return info;
}
