/** Options of {@link Coalescer}. */
export interface CoalescerOptions<I, R> {
  /** Items per flush at most (the API's batch limit, e.g. 10 for PutEvents and DeleteMessageBatch). */
  maxItems: number;
  /** How long the first item waits for batch-mates, ms; 0 flushes after the current event-loop turn. */
  lingerMs: number;
  /** Weight of an item (e.g. bytes) and the most a flush may carry. @defaultValue no weight limit */
  weight?: { of: (item: I) => number; max: number };
  /**
   * Sends one batch; resolves with one result per item, in order. A rejection fails every item
   * of the batch with that error.
   */
  flush: (items: readonly I[]) => Promise<readonly R[]>;
}

interface Waiting<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers the items that concurrent callers submit within a short window into one batch call
 * (PutEvents, DeleteMessageBatch): many messages handled at once cost one API call instead of
 * one each. Every caller gets its own item's result.
 */
export class Coalescer<I, R> {
  readonly #options: CoalescerOptions<I, R>;
  #pending: Waiting<I, R>[] = [];
  #weight = 0;
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  constructor(options: CoalescerOptions<I, R>) {
    if (!Number.isSafeInteger(options.maxItems) || options.maxItems < 1) throw new RangeError(`CoalescerOptions.maxItems must be a positive integer, got ${String(options.maxItems)}`);
    if (!Number.isFinite(options.lingerMs) || options.lingerMs < 0) throw new RangeError(`CoalescerOptions.lingerMs must be ≥ 0, got ${String(options.lingerMs)}`);
    this.#options = options;
  }

  /** Adds an item to the next batch; resolves with its result. */
  submit(item: I): Promise<R> {
    const weight = this.#options.weight?.of(item) ?? 0;
    if (this.#options.weight !== undefined && this.#pending.length > 0 && this.#weight + weight > this.#options.weight.max) this.#flushNow();
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#weight += weight;
      if (this.#pending.length >= this.#options.maxItems) this.#flushNow();
      else if (this.#timer === undefined) {
        this.#timer = this.#options.lingerMs === 0 ? setImmediate(() => this.#flushNow()) : setTimeout(() => this.#flushNow(), this.#options.lingerMs);
      }
    });
  }

  #flushNow(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer as NodeJS.Timeout);
      clearImmediate(this.#timer as NodeJS.Immediate);
      this.#timer = undefined;
    }
    const batch = this.#pending;
    this.#pending = [];
    this.#weight = 0;
    if (batch.length === 0) return;
    this.#options.flush(batch.map((w) => w.item)).then(
      (results) => {
        batch.forEach((waiting, i) => {
          if (i < results.length) waiting.resolve(results[i] as R);
          else waiting.reject(new Error(`the batch call returned ${results.length} results for ${batch.length} items`));
        });
      },
      (error: unknown) => {
        for (const waiting of batch) waiting.reject(error);
      },
    );
  }
}
