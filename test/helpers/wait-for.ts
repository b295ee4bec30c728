// Waiting in tests: for a condition, checked every few ms until a deadline far beyond what it should take, never
// for a fixed time (a loaded machine can take longer than any fixed wait, and a quick one wastes it).

/** Resolves with the first value `check` gives that is neither undefined nor false; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
