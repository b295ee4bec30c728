// Random bytes for ids made per event (a new author's account id): taken from a buffer filled 4 KB at a time.
// Each fill is a getrandom system call, ~7 µs here and several times that under load, where an id needs 16 bytes;
// node:crypto's randomUUID pools its bytes the same way, but the uuid package's v7 asks for 16 at a time.
import { randomFillSync } from 'node:crypto';

const pool = new Uint8Array(4096);
let next = pool.length;

/** `n` (at most 4,096) fresh random bytes, a view of the pool: used at once, never kept (the pool is refilled). */
export function pooledRandomBytes(n: number): Uint8Array {
  if (next + n > pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const out = pool.subarray(next, next + n);
  next += n;
  return out;
}
