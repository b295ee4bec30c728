// Writes signed events as JSONL (one event per line) for measuring the import (`npm run import`) and for seeding a
// store: `npx tsx bench/generate-events.ts --events 100000 --keys 1000 --out /tmp/events.jsonl`. Each key publishes a
// profile (kind 0) and a contact list (kind 3), then notes (kind 1, with t tags and some replies), reactions (7),
// reposts (6), articles (30023, addressable: 2 %) and a few deletions (5) of its own notes, with created_at spread over
// the last year. Keys come from --seed, so two runs with the same seed make the same authors. Signing uses bcrypto's
// native BIP-340 (about 10,000 events/s here) and falls back to nostr-wasm (about 1,500 events/s).
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { getEventHash, getPublicKey, type NostrEvent } from 'nostr-tools/pure';
import * as wasm from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';

interface Options {
  events: number;
  keys: number;
  seed: string;
  out: string | undefined;
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { events: 100_000, keys: 1000, seed: 'nostrx', out: undefined };
  for (let i = 0; i < argv.length; i++) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${name} needs a value`);
    if (name === '--events') o.events = Number(value);
    else if (name === '--keys') o.keys = Number(value);
    else if (name === '--seed') o.seed = value;
    else if (name === '--out') o.out = value;
    else throw new Error(`unknown option ${name}; use --events N --keys N --seed S --out FILE`);
    i++;
  }
  if (!Number.isInteger(o.events) || o.events < 1 || !Number.isInteger(o.keys) || o.keys < 1)
    throw new Error('--events and --keys must be positive integers');
  return o;
}

type Template = Pick<NostrEvent, 'kind' | 'created_at' | 'tags' | 'content'>;
type Signer = (t: Template, sk: Uint8Array, pubkey: string) => NostrEvent;

async function loadSigner(): Promise<Signer> {
  try {
    const schnorr = createRequire(import.meta.url)('bcrypto/lib/schnorr') as {
      native: number;
      sign(msg: Buffer, key: Buffer): Buffer;
    };
    if (schnorr.native === 2) {
      return (t, sk, pubkey) => {
        const id = getEventHash({ ...t, pubkey });
        const sig = schnorr.sign(Buffer.from(id, 'hex'), Buffer.from(sk)).toString('hex');
        return { id, pubkey, created_at: t.created_at, kind: t.kind, tags: t.tags, content: t.content, sig };
      };
    }
  } catch {
    // not built here: nostr-wasm below
  }
  wasm.setNostrWasm(await initNostrWasm());
  return (t, sk) => {
    const { id, pubkey, created_at, kind, tags, content, sig } = wasm.finalizeEvent({ ...t }, sk);
    return { id, pubkey, created_at, kind, tags, content, sig };
  };
}

/** A small deterministic generator (mulberry32), so a seed makes the same file. */
function random(seed: string): () => number {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOPICS = ['nostr', 'bitcoin', 'news', 'art', 'music', 'dev', 'photography', 'food', 'travel', 'memes'];
const YEAR = 365 * 24 * 3600;

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const sign = await loadSigner();
  const rnd = random(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const keys = Array.from({ length: o.keys }, (_, i) => {
    const sk = new Uint8Array(createHash('sha256').update(`${o.seed}:key:${i}`).digest());
    return { sk, pk: getPublicKey(sk) };
  });
  const now = Math.floor(Date.now() / 1000);
  const notes: { id: string; pubkey: string }[] = [];
  const ownNotes = new Map<string, string[]>();
  const out: Writable = o.out ? createWriteStream(o.out) : process.stdout;
  let written = 0;
  const write = async (ev: NostrEvent): Promise<void> => {
    written++;
    if (!out.write(JSON.stringify(ev) + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
  };

  for (const k of keys) {
    if (written >= o.events) break;
    await write(
      sign(
        {
          kind: 0,
          created_at: now - Math.floor(rnd() * YEAR),
          tags: [],
          content: JSON.stringify({ name: k.pk.slice(0, 8), about: 'generated' }),
        },
        k.sk,
        k.pk,
      ),
    );
    if (written >= o.events) break;
    const follows = Array.from({ length: 20 }, () => ['p', pick(keys).pk]);
    await write(sign({ kind: 3, created_at: now - Math.floor(rnd() * YEAR), tags: follows, content: '' }, k.sk, k.pk));
  }
  while (written < o.events) {
    const k = pick(keys);
    const at = now - Math.floor(rnd() * YEAR);
    const r = rnd();
    const target = notes.length > 0 ? pick(notes) : undefined;
    let t: Template;
    if (r < 0.7 || !target) {
      const tags = [['t', pick(TOPICS)]];
      if (target && rnd() < 0.3) tags.push(['e', target.id, '', 'reply'], ['p', target.pubkey]);
      t = {
        kind: 1,
        created_at: at,
        tags,
        content: `note ${written} about #${tags[0]![1]} ${'lorem ipsum '.repeat(1 + Math.floor(rnd() * 10))}`,
      };
    } else if (r < 0.97) {
      // a reaction (7) or a repost (6) of an earlier note
      const reaction = r < 0.85;
      t = {
        kind: reaction ? 7 : 6,
        created_at: at,
        tags: [
          ['e', target.id],
          ['p', target.pubkey],
        ],
        content: reaction ? '+' : '',
      };
    } else if (r < 0.99)
      t = {
        kind: 30023,
        created_at: at,
        tags: [
          ['d', `article-${Math.floor(rnd() * 5)}`],
          ['t', pick(TOPICS)],
        ],
        content: `article ${written}`,
      };
    else {
      const mine = ownNotes.get(k.pk);
      if (!mine?.length) continue;
      t = {
        kind: 5,
        created_at: now,
        tags: [
          ['e', mine.pop()!],
          ['k', '1'],
        ],
        content: 'deleted',
      };
    }
    const ev = sign(t, k.sk, k.pk);
    if (ev.kind === 1) {
      notes.push({ id: ev.id, pubkey: ev.pubkey });
      if (notes.length > 10_000) notes.splice(0, 5000);
      const mine = ownNotes.get(ev.pubkey) ?? [];
      mine.push(ev.id);
      ownNotes.set(ev.pubkey, mine.slice(-20));
    }
    await write(ev);
  }
  if (out !== process.stdout)
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  process.stderr.write(`generated ${written} events from ${o.keys} keys\n`);
}

await main();
