/**
 * The `PI-ResourceId`s this process is forwarding or forwarded lately. A stream duplicate often
 * arrives on another stream while the first copy is still on its way to the verify queue, before
 * its dedupe marker exists; this catches it without a DynamoDB round trip. Dropping such a copy is
 * safe: the first copy's answer is confirmed only once that copy is durable, so if it fails, the
 * BCB delivers it again.
 */
export class RecentResources {
  readonly #inFlight = new Set<string>();
  readonly #done = new Set<string>();
  readonly #capacity: number;

  /** @param capacity - forwarded ids remembered (oldest forgotten first) */
  constructor(capacity = 10_000) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${String(capacity)}`);
    this.#capacity = capacity;
  }

  /** Takes `id` for forwarding; false when it is in flight or was forwarded lately. */
  acquire(id: string): boolean {
    if (this.#inFlight.has(id) || this.#done.has(id)) return false;
    this.#inFlight.add(id);
    return true;
  }

  /** `id` is durable (or known handled): later copies are dropped. */
  done(id: string): void {
    this.#inFlight.delete(id);
    this.#done.delete(id);
    this.#done.add(id);
    if (this.#done.size > this.#capacity) {
      const oldest = this.#done.values().next();
      if (oldest.done !== true) this.#done.delete(oldest.value);
    }
  }

  /** `id` was not forwarded: a later copy must be forwarded. */
  release(id: string): void {
    this.#inFlight.delete(id);
  }
}
