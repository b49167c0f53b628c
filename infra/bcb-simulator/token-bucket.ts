/** Size and refill of one DICT rate-limit policy's bucket. */
export interface TokenBucketPolicy {
  /** Tokens the bucket holds when full. */
  readonly capacity: number;
  /** Tokens added per second. */
  readonly refillPerSecond: number;
}

/**
 * Token buckets keyed by participant (DICT manual, "Limitação de requisições"): each request
 * takes one token; an empty bucket answers 429 until it refills.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly policy: TokenBucketPolicy;
  private readonly now: () => number;

  constructor(policy: TokenBucketPolicy, now: () => number = () => performance.now()) {
    if (!(policy.capacity >= 1)) throw new RangeError(`TokenBucketPolicy.capacity must be ≥ 1, got ${policy.capacity}`);
    if (!(policy.refillPerSecond >= 0)) throw new RangeError(`TokenBucketPolicy.refillPerSecond must be ≥ 0, got ${policy.refillPerSecond}`);
    this.policy = policy;
    this.now = now;
  }

  /** Takes a token for `key`; false when the bucket is empty. */
  take(key: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.policy.capacity, at: now };
    bucket.tokens = Math.min(this.policy.capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.policy.refillPerSecond);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /**
   * Takes `tokens` more for `key` after the fact, down to zero at most (a DICT counting rule that
   * depends on the answer, e.g. a 404 costing 3 under ENTRIES_READ_PARTICIPANT_ANTISCAN).
   */
  charge(key: string, tokens: number): void {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return;
    bucket.tokens = Math.max(0, bucket.tokens - tokens);
  }

  /** Tokens left for `key` (without taking one). */
  available(key: string): number {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return this.policy.capacity;
    return Math.min(this.policy.capacity, bucket.tokens + ((this.now() - bucket.at) / 1000) * this.policy.refillPerSecond);
  }
}
