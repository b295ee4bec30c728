// BIP-340 signature checks in native code: bcrypto's binding to libsecp256k1, about five times faster than the
// same library compiled to WebAssembly (nostr-wasm) on this machine (~55 against ~290 µs a check). bcrypto is an
// optional dependency built by node-gyp at install; where it did not build, or its answers fail the check below,
// loadNativeBip340() says why and the caller keeps nostr-wasm. bcrypto falls back to pure JavaScript on its own
// when its binding is missing, which is slower than nostr-wasm, so only the native backend is taken.
import { createRequire } from 'node:module';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';

/** What we use of bcrypto/lib/schnorr (BIP-340 over secp256k1). */
interface BcryptoSchnorr {
  /** 2 when the native binding is loaded. */
  readonly native: number;
  verify(msg: Uint8Array, sig: Uint8Array, key: Uint8Array): boolean;
  publicKeyVerify(key: Uint8Array): boolean;
}

type Bip340Verdict = 'valid' | 'bad-signature' | 'bad-pubkey';

export interface NativeBip340 {
  /** id, sig and pubkey as lowercase hex (64, 128 and 64 characters: parseEvent's shapes). */
  verify(idHex: string, sigHex: string, pubkeyHex: string): Bip340Verdict;
}

export type NativeLoad =
  { readonly ok: true; readonly verifier: NativeBip340 } | { readonly ok: false; readonly why: string };

function verifierOf(lib: BcryptoSchnorr): NativeBip340 {
  return {
    verify(idHex, sigHex, pubkeyHex) {
      const key = Buffer.from(pubkeyHex, 'hex');
      try {
        if (lib.verify(Buffer.from(idHex, 'hex'), Buffer.from(sigHex, 'hex'), key)) return 'valid';
      } catch {
        // bcrypto throws on inputs of the wrong length; the caller has checked them, so this is a bad signature
      }
      return lib.publicKeyVerify(key) ? 'bad-signature' : 'bad-pubkey';
    },
  };
}

/** A fresh signature must verify, and the same signature over another id, or under a key that is no x coordinate, must not. */
function selfCheck(v: NativeBip340): string | undefined {
  const ev = finalizeEvent(
    { kind: 1, created_at: 1_700_000_000, tags: [], content: 'native BIP-340 self-check' },
    generateSecretKey(),
  );
  if (v.verify(ev.id, ev.sig, ev.pubkey) !== 'valid') return 'a valid signature was refused';
  const otherId = (ev.id[0] === '0' ? '1' : '0') + ev.id.slice(1);
  if (v.verify(otherId, ev.sig, ev.pubkey) !== 'bad-signature') return 'a signature over another id was accepted';
  if (v.verify(ev.id, ev.sig, 'f'.repeat(64)) !== 'bad-pubkey') return 'a key beyond the field prime was not refused';
  return undefined;
}

export function loadNativeBip340(): NativeLoad {
  let lib: BcryptoSchnorr;
  try {
    lib = createRequire(import.meta.url)('bcrypto/lib/schnorr') as BcryptoSchnorr;
  } catch (err) {
    return {
      ok: false,
      why: `bcrypto did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
    };
  }
  if (lib.native !== 2) return { ok: false, why: 'bcrypto loaded without its native binding' };
  const verifier = verifierOf(lib);
  const failed = selfCheck(verifier);
  return failed ? { ok: false, why: `bcrypto's self-check failed: ${failed}` } : { ok: true, verifier };
}
