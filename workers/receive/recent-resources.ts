/**
 * The `PI-ResourceId`s this process is forwarding or forwarded lately. A stream duplicate often
 * arrives on another stream while the first copy is still on its way to the verify queue; this
 * drops it (and any copy forwarded lately) without a store round trip, before the verify worker
 * would have to record it as a duplicate. The later copy waits
 * for the first one's outcome ({@link RecentResources.waitFor}) before its own answer is
 * confirmed: dropped if the first copy became durable, forwarded itself if it did not (confirming
 * the duplicate might confirm the resource at the BCB).
 */
export class RecentResources {
  /** Ids being forwarded, with how their forwarding ends: true durable, false not forwarded. */
  readonly #inFlight = new Map<string, { settled: Promise<boolean>; settle: (durable: boolean) => void }>();
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
    let settle: (durable: boolean) => void = () => undefined;
    const settled = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    this.#inFlight.set(id, { settled, settle });
    return true;
  }

  /**
   * How the copy being forwarded ends: true once it is durable (a later copy may be dropped and
   * confirmed), false when it was not forwarded (the later copy must be forwarded itself). True
   * at once for an id forwarded lately; false at once for an id nobody is forwarding.
   */
  waitFor(id: string): Promise<boolean> {
    if (this.#done.has(id)) return Promise.resolve(true);
    return this.#inFlight.get(id)?.settled ?? Promise.resolve(false);
  }

  /** `id` is durable (or known handled): later copies are dropped. */
  done(id: string): void {
    this.#inFlight.get(id)?.settle(true);
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
    this.#inFlight.get(id)?.settle(false);
    this.#inFlight.delete(id);
  }
}
