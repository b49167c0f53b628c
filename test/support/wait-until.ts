/** Options of {@link waitUntil}. */
export interface WaitUntilOptions {
  /** Give up after this long; generous, since CI runs on a loaded 2-core machine. @defaultValue 20_000 */
  timeoutMs?: number;
  /** Pause between checks. @defaultValue 25 */
  intervalMs?: number;
}

/**
 * Checks `check` until it returns a value other than `undefined` or `false`, and returns that
 * value; throws, naming `what`, when it has not within `timeoutMs`. Tests wait for the condition
 * they then assert on instead of sleeping a fixed time that a busy machine may not honour.
 */
export async function waitUntil<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, options: WaitUntilOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
}

/**
 * Lets every callback already queued run: promise continuations and I/O callbacks of this turn,
 * then `turns` more turns of the event loop. For asserting that something did *not* happen once
 * the code under test has gone as far as it can without outside help (a gate held by the test).
 */
export async function drainEventLoop(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i += 1) await new Promise((resolve) => setImmediate(resolve));
}
